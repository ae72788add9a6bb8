import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { composeSteps, diffRecords, evolveUser, evolveUserSteps } from '../../src/domain/evolve.js';
import type { UserId } from '../../src/domain/ids.js';
import { EMPTY_MAP, defaultRecord, type UserRecord } from '../../src/domain/presence.js';
import { fcParams } from '../support/fc.js';
import { anyRecord, anyStep } from '../support/records.js';

const user = '@u:test.local' as UserId;
/** Any record, not only those reachable from the default one. */
const record = anyRecord(user);
/** Steps that may write every presence field, set or remove devices and syncs, and carry a stream id. */
const step = anyStep(user);

describe('the fold (immer reducer over one user’s record)', () => {
  it('folding a run of steps in one produce equals folding them one by one', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const oneByOne = steps.reduce<UserRecord>((r, s) => evolveUser(r, s), defaultRecord(user));
        expect(evolveUserSteps(user, undefined, steps)).toEqual(oneByOne);
      }),
      fcParams(200),
    );
  });

  it('a first step without a record equals folding it into the default record, sharing the empty maps as that does', () => {
    fc.assert(
      fc.property(step, (s) => {
        const built = evolveUser(undefined, s);
        const drafted = evolveUser(defaultRecord(user), s);
        expect(built).toEqual(drafted);
        expect(built.devices === EMPTY_MAP).toBe(drafted.devices === EMPTY_MAP);
        expect(built.syncs === EMPTY_MAP).toBe(drafted.syncs === EMPTY_MAP);
        expect(Object.keys(built.presence)).toEqual(Object.keys(drafted.presence));
      }),
      fcParams(300),
    );
  });

  it('diffRecords then evolveUser reproduces the target record', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 10 }), fc.array(step, { maxLength: 10 }), (a, b) => {
        const from = evolveUserSteps(user, undefined, a);
        const to = evolveUserSteps(user, from, b);
        const diff = diffRecords(user, from, to, 0);
        expect(diff === null ? from : evolveUser(from, diff)).toEqual(to);
      }),
      fcParams(200),
    );
  });

  it('diffRecords: with no device removed, the step carries the target record’s own device map; with one removed, only the differences', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 10 }), fc.array(step, { minLength: 1, maxLength: 10 }), (a, b) => {
        const from = evolveUserSteps(user, undefined, a);
        const to = evolveUserSteps(user, from, b);
        const before = structuredClone(to);
        const diff = diffRecords(user, from, to, 0);
        if (diff === null) return;
        const removed = Object.keys(from.devices).filter((k) => !(k in to.devices));
        const changed = Object.keys(to.devices).filter((k) => JSON.stringify(to.devices[k as keyof typeof to.devices]) !== JSON.stringify(from.devices[k as keyof typeof from.devices]));
        if (removed.length === 0 && changed.length > 0) expect(diff.devices).toBe(to.devices);
        else if (removed.length > 0) expect(Object.keys(diff.devices ?? {}).sort()).toEqual([...removed, ...changed].sort());
        else expect(diff.devices).toBeUndefined();
        // folding the step (which shares maps with `to`) leaves `to` as it was
        evolveUser(from, diff);
        evolveUserSteps(user, from, [diff, diff]);
        expect(to).toEqual(before);
      }),
      fcParams(200),
    );
  });

  it('composeSteps: folding the composition equals folding a then b, from any record', () => {
    fc.assert(
      fc.property(record, step, step, (r, a, b) => {
        expect(evolveUser(r, composeSteps(a, b))).toEqual(evolveUser(evolveUser(r, a), b));
      }),
      fcParams(300),
    );
  });

  it('composeSteps is pure: its arguments are unchanged and share no map with the result', () => {
    fc.assert(
      fc.property(step, step, (a, b) => {
        const [a0, b0] = [structuredClone(a), structuredClone(b)];
        const c = composeSteps(a, b);
        expect([a, b]).toEqual([a0, b0]);
        for (const s of [a, b]) {
          if (s.presence !== undefined) expect(c.presence).not.toBe(s.presence);
          if (s.devices !== undefined) expect(c.devices).not.toBe(s.devices);
          if (s.syncs !== undefined) expect(c.syncs).not.toBe(s.syncs);
        }
        // composing more steps into the result leaves a and b alone
        composeSteps(c, a);
        expect([a, b]).toEqual([a0, b0]);
      }),
      fcParams(200),
    );
  });

  it('composeSteps is associative (as far as the fold can tell)', () => {
    fc.assert(
      fc.property(record, step, step, step, (r, a, b, c) => {
        expect(evolveUser(r, composeSteps(composeSteps(a, b), c))).toEqual(evolveUser(r, composeSteps(a, composeSteps(b, c))));
      }),
      fcParams(200),
    );
  });

  it('a composed run of steps from any record equals folding them one by one, and leaves the logged steps unchanged', () => {
    fc.assert(
      fc.property(record, fc.array(step, { maxLength: 30 }), (r, steps) => {
        const logged = structuredClone(steps);
        const oneByOne = steps.reduce<UserRecord>((acc, s) => evolveUser(acc, s), r);
        expect(evolveUserSteps(user, r, steps)).toEqual(oneByOne);
        expect(steps).toEqual(logged);
      }),
      fcParams(200),
    );
  });
});

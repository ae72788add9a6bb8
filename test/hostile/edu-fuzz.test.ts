/**
 * EDU fuzzer: inbound federation `m.presence` content straight into the
 * engine's receiver (and through the bounded InboundFederation gate). Items
 * are drawn from a grammar whose validity is known independently of the
 * engine's schema, so the oracle is: invalid items are dropped and counted,
 * each user ends in the state of their last valid item, nothing throws.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InboundFederation, PRESENCE_VALUES } from '../../src/index.js';
import { createTestEngine } from '../../src/testing/index.js';
import { FUZZ_TIMEOUT_MS, PROTOTYPE_NAMES, fuzzParams } from './fuzz-runs.js';

const ORIGIN = 'b.test';

/** A value with its validity for one field. */
type Field = { value: unknown; valid: boolean; absent?: boolean };
const field = (valid: unknown[], invalid: unknown[], optional: boolean): fc.Arbitrary<Field> =>
  fc.oneof(
    fc.constantFrom(...valid).map((value) => ({ value, valid: true })),
    fc.constantFrom(...invalid).map((value) => ({ value, valid: false })),
    ...(optional ? [fc.constant({ value: undefined, valid: true, absent: true })] : [fc.constant({ value: undefined, valid: false, absent: true })]),
  );

const localparts = ['alice', 'bob', ...PROTOTYPE_NAMES];
const userId = fc.oneof(
  fc.constantFrom(...localparts).map((l) => ({ value: `@${l}:${ORIGIN}`, valid: true, user: `@${l}:${ORIGIN}` })),
  fc.constantFrom(...localparts).map((l) => ({ value: `@${l}:c.test`, valid: false, user: undefined })), // another server
  fc.constantFrom(...localparts).map((l) => ({ value: `@${l}:a.test`, valid: false, user: undefined })), // ours: spoofed
  fc.constantFrom('', 'alice', '@:b.test', '@a b:b.test', `@${'x'.repeat(300)}:b.test`, 42, null, {}, ['@a:b.test']).map((value) => ({ value, valid: false, user: undefined })),
);
const presence = field(['online', 'unavailable', 'offline'], ['sleepy', '', 'ONLINE', 1, null, true, 'constructor'], false);
const lastActiveAgo = field([0, 1, 1000, null], [-1, 1.5, 'x', true, {}, Number.MAX_SAFE_INTEGER * 2], true);
const statusMsg = field(['', 'hi', 'ünïcödé', null, 'x'.repeat(1000)], [1, true, {}, ['x']], true);
const currentlyActive = field([true, false, null], ['true', 0, 1, {}], true);

interface GenItem {
  item: unknown;
  valid: boolean;
  user: string | undefined;
  presence: unknown;
  statusMsg: unknown;
}

const itemArb: fc.Arbitrary<GenItem> = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(userId, presence, lastActiveAgo, statusMsg, currentlyActive, fc.constantFrom(...PROTOTYPE_NAMES, 'extra')).map(([u, p, l, s, c, extraKey]) => {
    const item: Record<string, unknown> = { user_id: u.value };
    if (!p.absent) item.presence = p.value;
    if (!l.absent) item.last_active_ago = l.value;
    if (!s.absent) item.status_msg = s.value;
    if (!c.absent) item.currently_active = c.value;
    if (extraKey !== '__proto__') item[extraKey] = 'ignored'; // unknown keys are ignored
    return { item, valid: u.valid && p.valid && l.valid && s.valid && c.valid, user: u.user, presence: p.value, statusMsg: s.value ?? null };
  }) },
  { weight: 1, arbitrary: fc.jsonValue().map((item) => ({ item, valid: false, user: undefined, presence: undefined, statusMsg: undefined })) },
).filter((g) => !(g.valid === false && typeof g.item === 'object' && g.item !== null && !Array.isArray(g.item) && looksValid(g.item)));

/** jsonValue could by chance produce a valid item; the filter keeps the oracle exact. */
function looksValid(o: object): boolean {
  const r = o as Record<string, unknown>;
  return typeof r.user_id === 'string' && r.user_id.endsWith(`:${ORIGIN}`) && typeof r.presence === 'string' && (PRESENCE_VALUES as readonly string[]).includes(r.presence);
}

const contentArb = fc.oneof(
  { weight: 6, arbitrary: fc.array(itemArb, { maxLength: 60 }).map((items) => ({ content: { push: items.map((i) => i.item) } as unknown, items })) },
  { weight: 1, arbitrary: fc.jsonValue().filter((v) => !(typeof v === 'object' && v !== null && 'push' in v)).map((content) => ({ content: content as unknown, items: null })) },
);

function expected(items: readonly GenItem[]): Map<string, GenItem> {
  const last = new Map<string, GenItem>();
  for (const i of items) if (i.valid && i.user !== undefined) last.set(i.user, i);
  return last;
}

describe('EDU fuzzer', () => {
  it(
    'engine.receiveFederationEdu: never throws; invalid items dropped and counted; each user takes their last valid item',
    () => {
      const { engine } = createTestEngine({ serverName: 'a.test' });
      fc.assert(
        fc.property(contentArb, ({ content, items }) => {
          const before = engine.stats.droppedInboundItems;
          const r = engine.receiveFederationEdu(ORIGIN, content);
          const isObject = typeof content === 'object' && content !== null && !Array.isArray(content);
          if (items === null) {
            expect(r.applied).toBe(0);
            // Content that is not an object (or whose push is not an array) is one dropped item.
            if (!isObject) expect(r.dropped).toBe(1);
            return;
          }
          const invalid = items.filter((i) => !i.valid).length;
          const last = expected(items);
          expect(r.dropped).toBe(invalid);
          expect(engine.stats.droppedInboundItems - before).toBe(invalid);
          expect(r.applied).toBe(last.size);
          for (const [user, i] of last) {
            const p = engine.getUserPresence(user);
            expect(p.state).toBe(i.presence);
            expect(p.statusMsg).toBe(i.statusMsg);
            expect(Number.isFinite(p.lastActiveTs)).toBe(true);
          }
        }),
        fuzzParams(400, 40_000),
      );
      engine.stop();
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'InboundFederation: whole transactions (any shape) never throw and agree with the engine on valid items',
    async () => {
      const { engine } = createTestEngine({ serverName: 'a.test' });
      const gate = new InboundFederation(engine, { itemsPerSlice: 7, maxItemsPerTransaction: 100 });
      const eduArb = fc.oneof(
        contentArb.map(({ content, items }) => ({ edu: { edu_type: 'm.presence', content } as unknown, items })),
        fc.jsonValue().map((edu) => ({ edu: edu as unknown, items: null })),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(eduArb, { maxLength: 5 }), async (edus) => {
          const r = await gate.receive(ORIGIN, edus.map((e) => e.edu));
          expect(r.applied).toBeGreaterThanOrEqual(0);
          expect(r.refusedItems).toBe(0);
          // With at most 100 items examined, every valid item within the budget applies.
          let budget = 100;
          const examined: GenItem[] = [];
          for (const e of edus) {
            if (e.items === null) continue;
            examined.push(...e.items.slice(0, budget));
            budget -= Math.min(budget, e.items.length);
          }
          for (const [user, i] of expected(examined)) {
            const later = edus.some((e) => e.items === null && typeof e.edu === 'object' && e.edu !== null && (e.edu as { edu_type?: unknown }).edu_type === 'm.presence');
            if (!later) expect(engine.getUserPresence(user).state).toBe(i.presence);
          }
        }),
        fuzzParams(150, 15_000),
      );
      engine.stop();
    },
    FUZZ_TIMEOUT_MS,
  );
});

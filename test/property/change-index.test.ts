/**
 * ChangeIndex: reading positions from `firstAfter(since)` to `length - 1` with
 * `userAt`/`roomAt` gives what `forEachSince` visits, and both give the last
 * `capacity` entries added after `since` (ring wrap-around included); a `since`
 * older than what the ring remembers is refused by both.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChangeIndex } from '../../streams/change-index.js';
import { fcParams } from '../support/fc.js';

describe('ChangeIndex', () => {
  it('positions from firstAfter read the entries after a token, like forEachSince', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.nat(50), fc.integer({ min: -1, max: 5 })), { maxLength: 60 }),
        fc.nat(200),
        (capacity, adds, sinceSeed) => {
          const index = new ChangeIndex(capacity, 0);
          const all: [number, number, number][] = [];
          let streamId = 0;
          for (const [step, user, room] of adds) {
            streamId += step;
            index.add(streamId, user, room);
            all.push([streamId, user, room]);
          }
          const since = sinceSeed % (streamId + 2);
          const kept = all.slice(Math.max(0, all.length - capacity));
          const floor = all.length > capacity ? (all[all.length - capacity - 1] as [number, number, number])[0] : 0;
          const want = since < floor ? null : kept.filter(([s]) => s > since).map(([, u, r]) => [u, r]);

          const first = index.firstAfter(since);
          const byPosition: number[][] = [];
          if (first >= 0) for (let k = first; k < index.length; k++) byPosition.push([index.userAt(k), index.roomAt(k)]);
          const visited: number[][] = [];
          const covered = index.forEachSince(since, (u, r) => visited.push([u, r]));

          expect(index.length).toBe(kept.length);
          expect(covered).toBe(want !== null);
          expect(first >= 0).toBe(want !== null);
          expect(index.covers(since)).toBe(want !== null);
          if (want !== null) {
            expect(byPosition).toEqual(want);
            expect(visited).toEqual(want);
          }
        },
      ),
      fcParams(300),
    );
  });
});

/** StreamPosition: ids only go up. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StreamPosition } from '../../../src/engine/stream-position.js';
import { fcParams } from '../../support/fc.js';

describe('StreamPosition', () => {
  it('next hands out increasing ids from the start position', () => {
    const s = new StreamPosition(7);
    expect(s.id).toBe(7);
    expect(s.next()).toBe(8);
    expect(s.next()).toBe(9);
    expect(s.id).toBe(9);
    expect(new StreamPosition().next()).toBe(1);
  });

  it('advanceTo never goes back, and next continues after the highest id seen', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant(null), fc.nat(1000)), { maxLength: 50 }), (ops) => {
        const s = new StreamPosition();
        let max = 0;
        for (const op of ops) {
          if (op === null) expect(s.next()).toBe(++max);
          else {
            s.advanceTo(op);
            max = Math.max(max, op);
          }
          expect(s.id).toBe(max);
        }
      }),
      fcParams(100),
    );
  });
});

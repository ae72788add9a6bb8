/** The delivery journal on its own: filing by (target, token), ranges, dedup, and bounded eviction. */
import { describe, expect, it } from 'vitest';
import type { ServerName, UserId } from '../../../src/domain/ids.js';
import { DeliveryJournal } from '../../../src/engine/delivery-journal.js';

const A = '@a:x' as UserId;
const B = '@b:x' as UserId;
const C = '@c:x' as UserId;
const FAR = 'far.example' as ServerName;

describe('DeliveryJournal', () => {
  it('answers who was handed a target between two tokens, each recipient once, never the target itself', () => {
    const j = new DeliveryJournal(100);
    j.local(B, [A], 5);
    j.local(B, [A, C], 5);
    j.local(A, [A], 5); // a user's own state is not a delivery to others
    j.remote(FAR, [A], 6);
    j.routed('watch', [A], 6);
    j.local(C, [A], 9);
    expect(j.deliveredBetween(A, 5, 9, true)).toEqual({ localUsers: 1, localUserIds: [B], remoteServers: [FAR], routers: ['watch'], complete: true });
    expect(j.deliveredBetween(A, 5, Infinity, false)).toEqual({ localUsers: 2, remoteServers: [FAR], routers: ['watch'], complete: true });
    expect(j.deliveredBetween(C, 0, Infinity, true).localUserIds).toEqual([B]);
  });

  it('drops the oldest records past its capacity and says so for ranges reaching back before them', () => {
    const j = new DeliveryJournal(2);
    j.local(B, [A], 1);
    j.local(C, [A], 2);
    j.local(B, [A], 3); // three recipients held: the token-1 record goes
    expect(j.deliveredBetween(A, 1, 2, false)).toMatchObject({ localUsers: 0, complete: false });
    expect(j.deliveredBetween(A, 2, Infinity, true)).toMatchObject({ localUserIds: [B, C], complete: true });
  });
});

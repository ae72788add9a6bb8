/**
 * TurnBuffer: a turn's events are handed over once and the scratch is
 * cleared; a user is listed once per turn (through `base`); the take* calls
 * hand over the list and start a new one.
 */
import { describe, expect, it } from 'vitest';
import type { PresenceEvent } from '../../../src/domain/events.js';
import type { RoomId, UserId } from '../../../src/domain/ids.js';
import { defaultPresence } from '../../../src/domain/presence.js';
import type { Room } from '../../../src/engine/room-index.js';
import { TurnBuffer } from '../../../src/engine/turn-buffer.js';

const ev = (n: number): PresenceEvent =>
  ({ type: 'room.membership', roomId: `!r${n}:example.org` as RoomId, userId: '@a:example.org' as UserId, membership: 'leave', at: n }) as PresenceEvent;
const room: Room = { id: '!r:example.org' as RoomId, index: 0, members: new Set(), remote: new Map(), excluded: false };

describe('TurnBuffer', () => {
  it('takeEvents hands the events over once, in order, and clears the scratch', () => {
    const t = new TurnBuffer();
    expect(t.takeEvents()).toBeNull();
    t.addEvent(ev(1));
    t.addEvent(ev(2));
    const first = t.takeEvents();
    expect(first).toEqual([ev(1), ev(2)]);
    expect(t.takeEvents()).toBeNull();
    t.addEvent(ev(3));
    const second = t.takeEvents();
    expect(second).toEqual([ev(3)]);
    expect(first).toEqual([ev(1), ev(2)]); // the log keeps the first list: not reused
    expect(second).not.toBe(first);
  });

  it('takeEvents keeps no reference to handed-over events in its scratch', () => {
    const t = new TurnBuffer();
    for (let i = 0; i < 5; i++) t.addEvent(ev(i));
    t.takeEvents();
    const scratch = (t as unknown as { events: unknown[] }).events;
    expect(scratch.every((e) => e === undefined)).toBe(true);
  });

  it('lists a notified user once per turn: a user whose last stream id is above base is already listed', () => {
    const t = new TurnBuffer();
    t.base = 10;
    t.notified(3, 4); // first change this turn (last id ≤ base)
    t.notified(5, 10);
    t.notified(3, 11); // second change of user 3: their last id (11) is above base
    expect(t.changedUsers).toBe(2);
    const changed = t.takeChanged();
    expect(changed.slice(0, 2)).toEqual([3, 5]);
    expect(t.changedUsers).toBe(0);
  });

  it('takeChanged swaps lists: a change recorded while the caller walks the list lands in the other one', () => {
    const t = new TurnBuffer();
    t.notified(1, 0);
    t.notified(2, 0);
    const first = t.takeChanged();
    t.notified(9, 0);
    expect(first.slice(0, 2)).toEqual([1, 2]);
    expect(t.changedUsers).toBe(1);
    const second = t.takeChanged();
    expect(second).not.toBe(first);
    expect(second[0]).toBe(9);
    t.takeChanged(); // nothing new: no swap, nothing handed over
    expect(t.changedUsers).toBe(0);
    expect(second[0]).toBe(9);
  });

  it('joins, pings and full-presence requests are handed over once', () => {
    const t = new TurnBuffer();
    expect(t.takeJoins()).toEqual([]);
    expect(t.takePings()).toEqual([]);
    expect(t.takeFullRequests()).toEqual([]);
    const ping = defaultPresence('@a:example.org' as UserId);
    t.addJoin(4, room);
    t.addPing(ping);
    t.addFullRequests(['@a:example.org' as UserId, '@b:remote.test' as UserId]);
    t.addFullRequests(['@c:example.org' as UserId]);
    const joins = t.takeJoins();
    expect(joins).toEqual([[4, room]]);
    expect(t.takePings()).toEqual([ping]);
    expect(t.takeFullRequests()).toEqual(['@a:example.org', '@b:remote.test', '@c:example.org']);
    expect(t.takeJoins()).toEqual([]);
    expect(t.takePings()).toEqual([]);
    expect(t.takeFullRequests()).toEqual([]);
    t.addJoin(5, room);
    expect(joins).toEqual([[4, room]]); // the handed-over list is not written again
  });
});

/**
 * PresenceSteps on its own, over the real parts a step records into (user
 * directory, actor system, turn buffer, change index, stream position, timer
 * wheel and slices on a SimulatedClock): a notified change gets the next
 * stream id, a change index entry and a log event; timers are filed only when
 * tracked; dormant users drop their actor; a queued re-examination runs
 * before the user's next input.
 */
import { describe, expect, it } from 'vitest';
import { PresenceActorSystem } from '../../../machines/actor-system.js';
import type { UserStepEvent } from '../../../src/domain/events.js';
import type { DeviceId, UserId } from '../../../src/domain/ids.js';
import { DEFAULT_TIMERS } from '../../../src/domain/presence.js';
import { PresenceSteps } from '../../../src/engine/presence-steps.js';
import { StreamPosition } from '../../../src/engine/stream-position.js';
import { TimerSlices } from '../../../src/engine/timer-slices.js';
import { TurnBuffer } from '../../../src/engine/turn-buffer.js';
import { UserDirectory } from '../../../src/engine/user-directory.js';
import { SimulatedClock } from '../../../src/testing/index.js';
import { TimerWheel } from '../../../src/timer-wheel.js';
import { ChangeIndex } from '../../../streams/change-index.js';

const A = '@a:example.org' as UserId;
const D = 'DEV' as DeviceId;

function setup(options: { tracked?: boolean; owned?: (id: UserId) => boolean; runSlices?: boolean } = {}) {
  const clock = new SimulatedClock(1_000_000);
  const users = new UserDirectory('example.org');
  const rules = { timers: DEFAULT_TIMERS, syncCountsAsActivity: true };
  const actors = new PresenceActorSystem(rules);
  const turn = new TurnBuffer();
  const changes = new ChangeIndex(100, 0);
  const stream = new StreamPosition();
  const counters = { updates: 0 };
  const turnsRun: string[] = [];
  const slices = new TimerSlices(clock, 1, {
    // by default the slice turns run at once; `runSlices: false` leaves re-examinations queued
    run: (job) => {
      turnsRun.push('slice');
      if (options.runSlices !== false) job();
    },
    reexamine: (user, at) => steps.reexamine(user, at),
    get userCount() {
      return users.size;
    },
  });
  const wheel = new TimerWheel(clock, 5_000, slices.onTimers);
  const steps: PresenceSteps = new PresenceSteps({
    users,
    actors,
    turn,
    changes,
    stream,
    wheel,
    slices,
    rules,
    tracked: () => options.tracked ?? true,
    owned: options.owned ?? (() => true),
    counters,
  });
  const set = (id: UserId, presence: 'online' | 'offline' | 'unavailable', statusMsg: string | null = null) =>
    steps.step(id, { type: 'presence.set', now: clock.now(), deviceId: D, presence, statusMsg });
  const events = () => (turn.takeEvents() ?? []) as UserStepEvent[];
  return { clock, users, actors, turn, changes, stream, counters, wheel, slices, steps, set, events, turnsRun };
}

describe('PresenceSteps', () => {
  it('a notified change: next stream id, change index entry, log event with the id, listed once in the turn', () => {
    const f = setup();
    f.set(A, 'online', 'hi');
    const a = f.users.find(A) as number;
    expect(f.stream.id).toBe(1);
    expect(f.users.lastStreamId[a]).toBe(1);
    expect(f.counters.updates).toBe(1);
    const [ev] = f.events();
    expect(ev).toMatchObject({ type: 'user.step', userId: A, at: f.clock.now(), streamId: 1 });
    expect(ev?.presence).toMatchObject({ state: 'online', statusMsg: 'hi' });
    expect(f.users.storedPresence(A)?.state).toBe('online');
    f.set(A, 'unavailable');
    expect(f.stream.id).toBe(2);
    expect(f.turn.changedUsers).toBe(1); // the same user twice in a turn is listed once
    const entries: number[][] = [];
    f.changes.forEachSince(0, (user, room, id) => entries.push([id, user, room]));
    expect(entries).toEqual([
      [1, a, -1],
      [2, a, -1],
    ]);
  });

  it('a step that changes nothing notifies nothing and gets no stream id', () => {
    const f = setup();
    f.set(A, 'online');
    f.events();
    f.set(A, 'online');
    expect(f.stream.id).toBe(1);
    expect(f.counters.updates).toBe(1);
  });

  it('files the next deadline on the wheel only when presence is tracked', () => {
    const tracked = setup();
    tracked.set(A, 'online');
    expect(tracked.wheel.size).toBe(1);
    const off = setup({ tracked: false });
    off.set(A, 'online');
    expect(off.wheel.size).toBe(0);
  });

  it('a user who becomes dormant (offline, no devices, no syncs) drops their actor and keeps only their presence', () => {
    const f = setup();
    f.set(A, 'online');
    f.set(A, 'offline');
    expect(f.actors.has(A)).toBe(true); // the offline device is still recorded
    f.clock.advance(2 * 3_600_000); // a timer re-examination forgets the device
    expect(f.actors.has(A)).toBe(false);
    expect(f.steps.recordOf(A).devices).toEqual({});
    expect(f.users.storedPresence(A)?.state).toBe('offline');
    expect(f.users.storedCount).toBe(1);
  });

  it('timer re-examination idles a syncing user at the tick time; unowned or unknown users are not re-examined', () => {
    const other = '@other:example.org' as UserId;
    const f = setup({ owned: (id) => id !== other });
    f.steps.step(A, { type: 'sync.start', now: f.clock.now(), deviceId: D, presence: 'online' });
    f.steps.step(other, { type: 'sync.start', now: f.clock.now(), deviceId: D, presence: 'online' });
    f.events();
    f.clock.advance(DEFAULT_TIMERS.idleTimeout + 10_000);
    expect(f.users.storedPresence(A)?.state).toBe('unavailable');
    expect(f.users.storedPresence(other)?.state).toBe('online');
    const [idle] = f.events();
    expect((idle?.at ?? 1) % 5_000).toBe(0); // a tick boundary of the 5 s wheel
    const stranger = f.users.indexOf('@stranger:example.org' as UserId);
    const before = f.stream.id;
    f.steps.reexamine(stranger, f.clock.now());
    expect(f.stream.id).toBe(before);
    expect(f.actors.has('@stranger:example.org' as UserId)).toBe(false);
  });

  it('an input from a user whose re-examination is still queued runs it first, at the tick time', () => {
    const f = setup({ runSlices: false });
    f.steps.step(A, { type: 'sync.start', now: f.clock.now(), deviceId: D, presence: 'online' });
    f.events();
    f.clock.advance(DEFAULT_TIMERS.idleTimeout + 10_000); // the slice turn never runs: the first due tick stays queued
    const a = f.users.find(A) as number;
    expect(f.slices.isQueued(a)).toBe(true);
    const tick = f.slices.queuedTime(a) as number;
    expect(tick).toBeLessThan(f.clock.now());
    expect(f.events()).toEqual([]); // not re-examined yet
    f.steps.step(A, { type: 'activity', now: f.clock.now(), deviceId: D });
    const evs = f.events();
    expect(evs.map((e) => e.at)).toEqual([tick, f.clock.now()]);
    expect(f.slices.isQueued(a)).toBe(false);
  });

  it('applyLogged applies a step as logged: no log event, no timer; a notified one takes a stream id here', () => {
    const f = setup();
    f.steps.applyLogged({ type: 'user.step', userId: A, at: 5, streamId: 77, presence: { state: 'online', lastActiveTs: 5 } });
    expect(f.turn.takeEvents()).toBeNull();
    expect(f.wheel.size).toBe(0);
    expect(f.users.storedPresence(A)?.state).toBe('online');
    expect(f.stream.id).toBe(1);
    f.steps.applyLogged({ type: 'user.step', userId: A, at: 6, presence: { state: 'offline' } });
    expect(f.actors.has(A)).toBe(false);
    expect(f.stream.id).toBe(1);
  });
});

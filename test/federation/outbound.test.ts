/** The per-destination outbound queue: coalescing, EDU cap, transport acknowledgement, back-off, drops. */
import { describe, expect, it } from 'vitest';
import type { ServerName, UserId } from '../../src/domain/ids.js';
import { defaultPresence, type PresenceValue, type UserPresenceState } from '../../src/domain/presence.js';
import { MAX_PRESENCE_STATES_PER_EDU, type PresenceEdu } from '../../src/federation/edu.js';
import { FederationOutbound, type FederationTransmission, type FederationTransport } from '../../src/federation/outbound.js';
import { FederationError, InvalidInputError } from '../../src/errors.js';
import { flushMicrotasks, MemoryLogger, SimulatedClock } from '../../src/testing/index.js';

const A = 'a.test' as ServerName;
const B = 'b.test' as ServerName;
const C = 'c.test' as ServerName;

function state(user: string, presence: PresenceValue, lastActiveTs = 0, statusMsg: string | null = null): UserPresenceState {
  return { ...defaultPresence(user as UserId), state: presence, lastActiveTs, statusMsg };
}

/** A transport whose sends wait until the test resolves or rejects them. */
function scriptedTransport() {
  const calls: { destination: ServerName; edus: readonly PresenceEdu[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const transport: FederationTransport = {
    send: (destination, edus) => new Promise<void>((resolve, reject) => calls.push({ destination, edus, resolve, reject })),
  };
  return { transport, calls };
}

function setup() {
  const clock = new SimulatedClock();
  const logger = new MemoryLogger();
  const q = new FederationOutbound(A, 'org.matrix.msc3026.busy', clock, logger);
  const emitted: FederationTransmission[] = [];
  q.transmissions$.subscribe((t) => emitted.push(t));
  return { clock, logger, q, emitted };
}

const pushOf = (edus: readonly PresenceEdu[]) => edus.flatMap((e) => e.content.push);

describe('FederationOutbound without a transport (fire-and-forget)', () => {
  it('coalesces per user within a turn and emits one transmission per destination', () => {
    const { q, emitted, clock } = setup();
    q.enqueue([B, C], [state('@u:a.test', 'online', clock.now() - 1000)]);
    q.enqueue([B], [state('@u:a.test', 'unavailable', clock.now() - 500, 'away'), state('@v:a.test', 'online')]);
    q.enqueue([A], [state('@w:a.test', 'online')]); // ourselves: never queued
    q.flush(clock.now());
    expect(emitted.map((t) => t.destination).sort()).toEqual([B, C]);
    const toB = emitted.find((t) => t.destination === B);
    expect(pushOf(toB?.edus ?? [])).toEqual([
      { presence: 'unavailable', user_id: '@u:a.test', last_active_ago: 500, status_msg: 'away' },
      { presence: 'online', user_id: '@v:a.test', currently_active: false },
    ]);
    expect(pushOf(emitted.find((t) => t.destination === C)?.edus ?? [])).toEqual([
      { presence: 'online', user_id: '@u:a.test', last_active_ago: 1000, currently_active: false },
    ]);
    expect(q.pendingFor(B)).toBe(0);
    expect(q.stats).toMatchObject({ transmissions: 2, statesSent: 3, pendingStates: 0 });
  });

  it('computes last_active_ago when the EDU is built, not when the state was queued', () => {
    const { q, emitted, clock } = setup();
    q.enqueue([B], [state('@u:a.test', 'online', clock.now())]);
    clock.advance(7000);
    q.flush(clock.now());
    expect(pushOf(emitted[0]?.edus ?? [])[0]?.last_active_ago).toBe(7000);
  });

  it('splits a transmission into EDUs of at most 50 states, oldest first', () => {
    const { q, emitted, clock } = setup();
    const states = Array.from({ length: 120 }, (_, i) => state(`@u${i}:a.test`, 'online'));
    q.enqueue([B], states);
    q.flush(clock.now());
    expect(emitted).toHaveLength(1);
    const edus = emitted[0]?.edus ?? [];
    expect(edus.map((e) => e.content.push.length)).toEqual([50, 50, 20]);
    expect(edus.every((e) => e.edu_type === 'm.presence')).toBe(true);
    expect(pushOf(edus).map((p) => p.user_id)).toEqual(states.map((s) => s.userId));
    expect(MAX_PRESENCE_STATES_PER_EDU).toBe(50);
  });

  it('never forwards remote users\u2019 presence to other servers', () => {
    const { q, emitted, clock, logger } = setup();
    q.enqueue([C], [state('@x:b.test', 'online'), state('@u:a.test', 'online')]);
    q.flush(clock.now());
    expect(pushOf(emitted[0]?.edus ?? []).map((p) => p.user_id)).toEqual(['@u:a.test']);
    expect(logger.entries.some((e) => e.level === 'error')).toBe(true);
  });
});

describe('FederationOutbound with a transport', () => {
  it('shows each destination’s phase, queue, failures and next retry in stats.destinations', async () => {
    const { q, clock } = setup();
    const { transport, calls } = scriptedTransport();
    q.attach(transport, { initialBackoffMs: 1000, maxBackoffMs: 8000 });
    const dest = (d: ServerName) => q.stats.destinations.find((s) => s.destination === d);
    q.enqueue([B, C], [state('@u:a.test', 'online'), state('@v:a.test', 'online')]);
    q.flush(clock.now());
    q.enqueue([B], [state('@w:a.test', 'online')]);
    expect(dest(B)).toEqual({ destination: B, phase: 'sending', pending: 1, inFlight: 2, consecutiveFailures: 0, failingSince: null, retryAt: null, backoffMs: 0 });
    clock.advance(50);
    const failedAt = clock.now();
    calls.find((c) => c.destination === B)?.reject(new Error('down'));
    calls.find((c) => c.destination === C)?.resolve();
    await flushMicrotasks();
    expect(dest(B)).toEqual({ destination: B, phase: 'backoff', pending: 3, inFlight: 0, consecutiveFailures: 1, failingSince: failedAt, retryAt: failedAt + 1000, backoffMs: 1000 });
    expect(dest(C)).toBeUndefined(); // idle with nothing queued: not tracked
    clock.advance(1000); // the retry goes out and fails again
    calls[calls.length - 1]?.reject(new Error('still down'));
    await flushMicrotasks();
    expect(dest(B)).toMatchObject({ phase: 'backoff', consecutiveFailures: 2, failingSince: failedAt, retryAt: clock.now() + 2000, backoffMs: 2000 });
    clock.advance(2000);
    calls[calls.length - 1]?.resolve();
    await flushMicrotasks();
    expect(q.stats.destinations).toEqual([]);
  });

  it('keeps one send in flight per destination and coalesces meanwhile', async () => {
    const { q, clock, emitted } = setup();
    const { transport, calls } = scriptedTransport();
    q.attach(transport);
    q.enqueue([B], [state('@u:a.test', 'online')]);
    q.flush(clock.now());
    expect(calls).toHaveLength(1);
    expect(q.phaseOf(B)).toBe('sending');
    for (const p of ['unavailable', 'online', 'busy'] as const) {
      q.enqueue([B], [state('@u:a.test', p)]);
      q.flush(clock.now());
    }
    q.enqueue([B], [state('@v:a.test', 'online')]);
    q.flush(clock.now());
    expect(calls).toHaveLength(1); // still one in flight
    expect(q.pendingFor(B)).toBe(2);
    calls[0]?.resolve();
    await flushMicrotasks();
    expect(calls).toHaveLength(2); // the coalesced remainder goes at once
    expect(pushOf(calls[1]?.edus ?? []).map((p) => [p.user_id, p.presence])).toEqual([
      ['@u:a.test', 'org.matrix.msc3026.busy'],
      ['@v:a.test', 'online'],
    ]);
    expect(emitted).toHaveLength(2); // observers see every transmission
    calls[1]?.resolve();
    await flushMicrotasks();
    expect(q.phaseOf(B)).toBe('idle');
    expect(q.stats).toMatchObject({ transmissions: 2, sendFailures: 0, pendingStates: 0, destinationsInFlight: 0 });
  });

  it('does not hold one destination back because another is failing', async () => {
    const { q, clock } = setup();
    const { transport, calls } = scriptedTransport();
    q.attach(transport);
    q.enqueue([B, C], [state('@u:a.test', 'online')]);
    q.flush(clock.now());
    expect(calls.map((c) => c.destination).sort()).toEqual([B, C]);
    calls.find((c) => c.destination === B)?.reject(new Error('down'));
    calls.find((c) => c.destination === C)?.resolve();
    await flushMicrotasks();
    q.enqueue([B, C], [state('@u:a.test', 'offline')]);
    q.flush(clock.now());
    expect(calls.filter((c) => c.destination === C)).toHaveLength(2);
    expect(calls.filter((c) => c.destination === B)).toHaveLength(1);
    expect(q.phaseOf(B)).toBe('backoff');
  });

  it('retries failed states with exponential back-off; newer states replace them', async () => {
    const { q, clock } = setup();
    const { transport, calls } = scriptedTransport();
    q.attach(transport, { initialBackoffMs: 1000, maxBackoffMs: 8000 });
    q.enqueue([B], [state('@u:a.test', 'online'), state('@v:a.test', 'online')]);
    q.flush(clock.now());
    calls[0]?.reject(new Error('connection refused'));
    await flushMicrotasks();
    expect(q.phaseOf(B)).toBe('backoff');
    q.enqueue([B], [state('@v:a.test', 'unavailable')]);
    q.flush(clock.now());
    expect(calls).toHaveLength(1);
    clock.advance(999);
    expect(calls).toHaveLength(1);
    clock.advance(1);
    expect(calls).toHaveLength(2);
    // the failed @u state comes back first; @v's newer state replaced the failed one
    expect(pushOf(calls[1]?.edus ?? []).map((p) => [p.user_id, p.presence])).toEqual([
      ['@u:a.test', 'online'],
      ['@v:a.test', 'unavailable'],
    ]);
    // delays double up to the cap: 1 s, 2 s, 4 s, 8 s, 8 s
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      calls[calls.length - 1]?.reject(new Error('still down'));
      await flushMicrotasks();
      const before = calls.length;
      let waited = 0;
      while (calls.length === before) {
        clock.advance(500);
        waited += 500;
      }
      delays.push(waited);
    }
    expect(delays).toEqual([2000, 4000, 8000, 8000]);
    calls[calls.length - 1]?.resolve();
    await flushMicrotasks();
    expect(q.phaseOf(B)).toBe('idle');
    expect(q.stats.sendFailures).toBe(5);
    expect(q.stats.droppedStates).toBe(0);
  });

  it('after an hour of failures drops and counts pending presence, then recovers', async () => {
    const { q, clock, logger } = setup();
    const { transport, calls } = scriptedTransport();
    q.attach(transport, { initialBackoffMs: 60_000, maxBackoffMs: 600_000 });
    q.enqueue([B], [state('@u:a.test', 'online'), state('@v:a.test', 'online')]);
    q.flush(clock.now());
    const failLatest = async () => {
      calls[calls.length - 1]?.reject(new Error('down'));
      await flushMicrotasks();
    };
    await failLatest();
    const start = clock.now();
    while (clock.now() - start < 3_600_000) {
      const n = calls.length;
      while (calls.length === n) clock.advance(10_000);
      expect(q.stats.droppedStates).toBe(0); // coalescing, still retrying
      q.enqueue([B], [state('@w:a.test', 'online')]);
      q.flush(clock.now());
      await failLatest();
    }
    expect(q.stats.droppedStates).toBe(3);
    expect(q.pendingFor(B)).toBe(0);
    expect(logger.warnings().some((m) => m.includes('dropped 3 pending presence'))).toBe(true);
    // the destination comes back: new presence flows again and the failure streak resets
    q.enqueue([B], [state('@u:a.test', 'offline')]);
    clock.advance(600_000);
    expect(calls.length).toBeGreaterThan(0);
    calls[calls.length - 1]?.resolve();
    await flushMicrotasks();
    expect(q.phaseOf(B)).toBe('idle');
    q.enqueue([B], [state('@u:a.test', 'online')]);
    q.flush(clock.now());
    await failLatest();
    expect(q.stats.droppedStates).toBe(3); // a fresh failure streak keeps its states
    expect(q.pendingFor(B)).toBe(1);
  });

  it('treats a send that never settles as failed after sendTimeoutMs and ignores its late answer', async () => {
    const { q, clock } = setup();
    const { transport, calls } = scriptedTransport();
    q.attach(transport, { sendTimeoutMs: 10_000, initialBackoffMs: 1000 });
    q.enqueue([B], [state('@u:a.test', 'online')]);
    q.flush(clock.now());
    clock.advance(10_000);
    await flushMicrotasks();
    expect(q.phaseOf(B)).toBe('backoff');
    expect(q.stats.sendFailures).toBe(1);
    calls[0]?.resolve(); // too late
    await flushMicrotasks();
    expect(q.phaseOf(B)).toBe('backoff');
    clock.advance(1000);
    expect(calls).toHaveLength(2);
    expect(pushOf(calls[1]?.edus ?? []).map((p) => p.user_id)).toEqual(['@u:a.test']);
  });

  it('counts a synchronous throw from the transport as a failure', async () => {
    const { q, clock } = setup();
    let n = 0;
    q.attach({
      send: () => {
        n++;
        throw new Error('boom');
      },
    });
    q.enqueue([B], [state('@u:a.test', 'online')]);
    q.flush(clock.now());
    await flushMicrotasks();
    expect(n).toBe(1);
    expect(q.phaseOf(B)).toBe('backoff');
    expect(q.pendingFor(B)).toBe(1);
  });

  it('caps a transmission at maxEdusPerTransmission; the rest follows after the acknowledgement', async () => {
    const { q, clock } = setup();
    const { transport, calls } = scriptedTransport();
    q.attach(transport, { maxEdusPerTransmission: 2 });
    q.enqueue([B], Array.from({ length: 130 }, (_, i) => state(`@u${i}:a.test`, 'online')));
    q.flush(clock.now());
    expect(calls[0]?.edus.map((e) => e.content.push.length)).toEqual([50, 50]);
    calls[0]?.resolve();
    await flushMicrotasks();
    expect(calls[1]?.edus.map((e) => e.content.push.length)).toEqual([30]);
  });

  it('detach returns to fire-and-forget and re-queues what was in flight', async () => {
    const { q, clock, emitted } = setup();
    const { transport, calls } = scriptedTransport();
    const link = q.attach(transport);
    q.enqueue([B], [state('@u:a.test', 'online')]);
    q.flush(clock.now());
    link.detach();
    calls[0]?.resolve();
    await flushMicrotasks();
    q.flush(clock.now());
    expect(emitted).toHaveLength(2);
    expect(pushOf(emitted[1]?.edus ?? []).map((p) => p.user_id)).toEqual(['@u:a.test']);
    expect(q.phaseOf(B)).toBe('idle');
  });

  it('validates options with typed errors', () => {
    const { q } = setup();
    const t = scriptedTransport().transport;
    expect(() => q.attach(t, { initialBackoffMs: -1 })).toThrow(InvalidInputError);
    expect(() => q.attach(t, { maxEdusPerTransmission: 101 })).toThrow(InvalidInputError);
    expect(() => q.attach(t, { initialBackoffMs: 10_000, maxBackoffMs: 1000 })).toThrow(/maxBackoffMs/);
  });

  it('stop cancels back-off timers and completes the stream', async () => {
    const { q, clock } = setup();
    const { transport, calls } = scriptedTransport();
    let completed = false;
    q.transmissions$.subscribe({ complete: () => (completed = true) });
    q.attach(transport, { initialBackoffMs: 1000 });
    q.enqueue([B], [state('@u:a.test', 'online')]);
    q.flush(clock.now());
    calls[0]?.reject(new FederationError(B, 'down'));
    await flushMicrotasks();
    q.stop();
    clock.advance(60_000);
    expect(calls).toHaveLength(1);
    expect(completed).toBe(true);
    expect(clock.pending).toBe(0);
  });
});

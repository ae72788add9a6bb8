/**
 * The delivery library on a simulated clock, with a transport that records
 * each attempt and answers when the test says so: one transaction in flight,
 * coalescing, retries of the same transaction with a capped back-off, the
 * saved position, interest rules and the presence extension.
 */
import { describe, expect, it } from 'vitest';
import {
  AppserviceDelivery,
  AppserviceTransactionError,
  InMemoryEventLog,
  MemoryPositionStore,
  createModuleApi,
  parseAppserviceRegistration,
  type AppserviceRegistrationInput,
  type AppserviceTransactionBody,
  type AppserviceTransport,
  type PresenceEngine,
} from '../../src/index.js';
import { createTestEngine, flushMicrotasks, type SimulatedClock } from '../../src/testing/index.js';

const ALICE = '@alice:test.local';
const BOB = '@bob:test.local';
const CAROL = '@carol:test.local';
const BOT = '@ircbot:test.local';
const IRC_DAVE = '@irc_dave:test.local';

function registration(extra: Partial<AppserviceRegistrationInput> = {}) {
  return parseAppserviceRegistration(
    {
      id: 'irc',
      url: 'http://bridge.invalid',
      as_token: 'as',
      hs_token: 'hs',
      sender_localpart: 'ircbot',
      namespaces: { users: [{ regex: '@irc_.*:test\\.local', exclusive: true }] },
      receive_ephemeral: true,
      ...extra,
    },
    'test.local',
    'app_service_config_files[0]',
  );
}

interface Attempt {
  readonly txnId: string;
  readonly body: AppserviceTransactionBody;
  readonly at: number;
  answer(ok: boolean): void;
}

/** A transport that records attempts and leaves them open until answered. */
function manualTransport(clock: SimulatedClock): { transport: AppserviceTransport; attempts: Attempt[] } {
  const attempts: Attempt[] = [];
  const transport: AppserviceTransport = ({ txnId, body }) =>
    new Promise<void>((resolve, reject) => {
      attempts.push({ txnId, body, at: clock.now(), answer: (ok) => (ok ? resolve() : reject(new AppserviceTransactionError('refused', 500))) });
    });
  return { transport, attempts };
}

const senders = (body: AppserviceTransactionBody): string[] => (body.ephemeral ?? []).map((e) => e.sender);
const statusOf = (body: AppserviceTransactionBody, user: string): unknown => (body.ephemeral ?? []).find((e) => e.sender === user)?.content.status_msg;

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flushMicrotasks();
}

async function started(engine: PresenceEngine, clock: SimulatedClock, extra: Partial<AppserviceRegistrationInput> = {}, store = new MemoryPositionStore()) {
  const { transport, attempts } = manualTransport(clock);
  const delivery = new AppserviceDelivery({ engine, registration: registration(extra), store, transport, initialBackoffMs: 1_000, maxBackoffMs: 8_000 });
  await delivery.start();
  return { delivery, attempts, store };
}

describe('appservice delivery', () => {
  it('keeps one transaction in flight and coalesces the latest state per user', async () => {
    const { engine, clock } = createTestEngine({ rooms: { '!r:test.local': [ALICE, BOB, IRC_DAVE] } });
    const { delivery, attempts } = await started(engine, clock);
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'a1' });
    await settle();
    expect(attempts).toHaveLength(1);
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'a2' });
    engine.setPresence(BOB, { presence: 'online', statusMsg: 'b1' });
    engine.setPresence(ALICE, { presence: 'unavailable', statusMsg: 'a3' });
    await settle();
    expect(attempts).toHaveLength(1); // still one in flight
    expect(delivery.queued).toBe(2);
    attempts[0]?.answer(true);
    await settle();
    expect(attempts).toHaveLength(2);
    const second = attempts[1]?.body as AppserviceTransactionBody;
    expect(senders(second).sort()).toEqual([ALICE, BOB]);
    expect(statusOf(second, ALICE)).toBe('a3');
    expect(second['de.sorunome.msc2409.ephemeral']).toBeUndefined();
    attempts[1]?.answer(true);
    await delivery.idle();
    expect(delivery.stats).toMatchObject({ transactions: 2, failures: 0 });
    await delivery.stop();
  });

  it('retries the same transaction with a doubling back-off up to the cap', async () => {
    const { engine, clock } = createTestEngine({ rooms: { '!r:test.local': [ALICE, IRC_DAVE] } });
    const { delivery, attempts } = await started(engine, clock);
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'a1' });
    await settle();
    const gaps: number[] = [];
    for (let i = 0; i < 6; i++) {
      attempts[i]?.answer(false);
      await settle();
      engine.setPresence(ALICE, { presence: 'online', statusMsg: `later-${i}` }); // waits: the failed one is retried unchanged
      const failedAt = clock.now();
      while (attempts.length === i + 1) {
        await clock.advanceAsync(250);
        await settle();
      }
      gaps.push(clock.now() - failedAt);
    }
    // 1 s, 2 s, 4 s, 8 s, then the 8 s cap.
    expect(gaps).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    expect(new Set(attempts.map((a) => a.txnId)).size).toBe(1);
    expect(attempts.every((a) => statusOf(a.body, ALICE) === 'a1')).toBe(true);
    expect(delivery.stats.consecutiveFailures).toBe(6);
    attempts.at(-1)?.answer(true);
    await settle();
    const next = attempts.at(-1) as Attempt;
    expect(next.txnId).not.toBe(attempts[0]?.txnId);
    expect(statusOf(next.body, ALICE)).toBe('later-5');
    next.answer(true);
    await delivery.idle();
    expect(delivery.stats.consecutiveFailures).toBe(0);
    await delivery.stop();
  });

  it('sends only users sharing a room with the namespace, its own users, and those the extension names', async () => {
    const { engine, clock } = createTestEngine({ rooms: { '!bridged:test.local': [ALICE, IRC_DAVE], '!other:test.local': [BOB, CAROL] } });
    const { delivery, attempts } = await started(engine, clock, { presence: { users: [CAROL] } });
    for (const u of [ALICE, BOB, CAROL, IRC_DAVE]) engine.setPresence(u, { presence: 'online' });
    await settle();
    attempts[0]?.answer(true);
    await settle();
    const all = attempts.flatMap((a) => senders(a.body));
    expect(new Set(all)).toEqual(new Set([ALICE, CAROL, IRC_DAVE]));
    // A join of a namespace user to Bob's room makes Bob (and Carol) visible at once.
    engine.joinRoom('!other:test.local', '@irc_erin:test.local');
    await settle();
    for (const a of attempts) a.answer(true);
    await delivery.idle();
    expect(attempts.flatMap((a) => senders(a.body))).toContain(BOB);
    await delivery.stop();
  });

  it('the extension takes regexes (matched from the start of the id) and all_users', async () => {
    const sent = async (presence: Partial<AppserviceRegistrationInput>['presence']): Promise<Set<string>> => {
      const { engine, clock } = createTestEngine();
      const { delivery, attempts } = await started(engine, clock, { presence });
      for (const u of [ALICE, BOB, CAROL, '@bobby:test.local']) engine.setPresence(u, { presence: 'online' });
      await settle();
      for (let i = 0; i < 5; i++) {
        for (const a of attempts) a.answer(true);
        await settle();
      }
      await delivery.idle();
      await delivery.stop();
      return new Set(attempts.flatMap((a) => senders(a.body)));
    };
    expect(await sent({ user_regexes: ['@bob:test\\.local'] })).toEqual(new Set([BOB]));
    expect(await sent({ user_regexes: ['@bob'] })).toEqual(new Set([BOB, '@bobby:test.local'])); // from the start, as Synapse's re.match
    expect(await sent({ user_regexes: ['bob'] })).toEqual(new Set());
    expect(await sent({ all_users: true })).toEqual(new Set([ALICE, BOB, CAROL, '@bobby:test.local']));
    expect(await sent(undefined)).toEqual(new Set());
  });

  it('states a router routes to a namespace user (ALL_USERS) reach the appservice', async () => {
    const { engine, clock } = createTestEngine();
    createModuleApi(engine, 'all').registerPresenceRouterCallbacks({
      getUsersForStates: (states) => new Map([[BOT, new Set(states.filter((s) => s.userId === CAROL))]]),
      getInterestedUsers: (u) => (u === BOT ? 'ALL' : new Set<string>()),
    });
    const { delivery, attempts } = await started(engine, clock);
    engine.setPresence(CAROL, { presence: 'online', statusMsg: 'c1' });
    engine.setPresence(ALICE, { presence: 'online' });
    await settle();
    expect(attempts.map((a) => senders(a.body))).toEqual([[CAROL]]);
    attempts[0]?.answer(true);
    await delivery.idle();
    await delivery.stop();
  });

  it('resumes from the saved position, and resends everyone when the log no longer holds it', async () => {
    const log = new InMemoryEventLog(0, { retain: 5 });
    const { engine, clock } = createTestEngine({ rooms: { '!r:test.local': [ALICE, BOB, IRC_DAVE] }, log });
    const store = new MemoryPositionStore();
    const first = await started(engine, clock, {}, store);
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'a1' });
    await settle();
    first.attempts[0]?.answer(true);
    await first.delivery.idle();
    await first.delivery.stop();
    const saved = store.position as number;
    expect(saved).toBe(engine.log.position);

    engine.setPresence(BOB, { presence: 'online', statusMsg: 'b1' }); // while no delivery runs
    const second = await started(engine, clock, {}, store);
    await settle();
    expect(second.attempts.map((a) => senders(a.body))).toEqual([[BOB]]);
    expect(second.delivery.stats.fullResends).toBe(0);
    second.attempts[0]?.answer(true);
    await second.delivery.idle();
    await second.delivery.stop();

    for (let i = 0; i < 8; i++) engine.setPresence(ALICE, { presence: 'online', statusMsg: `a${i + 2}` }); // past the kept window
    const third = await started(engine, clock, {}, store);
    await settle();
    expect(third.delivery.stats.fullResends).toBe(1);
    expect(new Set(third.attempts.flatMap((a) => senders(a.body)))).toEqual(new Set([ALICE, BOB]));
    expect(statusOf(third.attempts[0]?.body as AppserviceTransactionBody, ALICE)).toBe('a9');
    await third.delivery.stop();
  });

  it('moves the saved position past entries that concern nobody, without a transaction', async () => {
    const { engine, clock } = createTestEngine({ rooms: { '!r:test.local': [ALICE, BOB] } });
    const { delivery, attempts, store } = await started(engine, clock);
    const start = store.position as number;
    const users = Array.from({ length: 1_100 }, (_, i) => `@u${i}:test.local`);
    engine.batch(() => {
      for (const u of users) engine.joinRoom('!x:test.local', u);
    });
    await settle();
    await delivery.idle();
    const afterJoins = store.position as number;
    // Leaves carry no stream id: logged entries that put nobody in the queue.
    for (const u of users) engine.leaveRoom('!x:test.local', u);
    await settle();
    await delivery.idle();
    await settle();
    expect(attempts).toEqual([]);
    expect(afterJoins).toBeGreaterThan(start);
    expect(store.position).toBeGreaterThanOrEqual(afterJoins + 1_024);
    await delivery.stop();
  });

  it('registration errors name the file and the key', () => {
    expect(() => registration({ namespaces: { users: [{ regex: '(' }] } } as never)).toThrow(/app_service_config_files\[0\]\.namespaces\.users\[0\]\.regex/);
    expect(() => parseAppserviceRegistration({ id: 'x', url: null, as_token: 'a', sender_localpart: 'b' }, 'test.local', 'app_service_config_files[2]')).toThrow(
      /app_service_config_files\[2\]\.hs_token/,
    );
    expect(() => registration({ presence: { everyone: true } } as never)).toThrow(/presence/);
  });
});

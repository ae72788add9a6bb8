/**
 * Presence delivery to one application service interested in 10 000 users
 * (docs/appservices.md): the appservice's bot shares one room with 10 000
 * users; every round changes the presence of all of them in one engine turn,
 * and the clock stops when the appservice has acknowledged the last
 * transaction. The appservice is the real framework (matrix-appservice) in
 * this process, over HTTP on 127.0.0.1.
 *
 *   npx tsx benchmarks/appservice.ts [--users N] [--rounds N] [--batch 100,1000]
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { AppService } from 'matrix-appservice';
import { AppserviceDelivery, MemoryPositionStore, PresenceEngine, parseAppserviceRegistration, presenceConfig } from '../src/index.js';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const USERS = Number(arg('--users') ?? 10_000);
const ROUNDS = Number(arg('--rounds') ?? 5);
const BATCHES = (arg('--batch') ?? '100,1000').split(',').map(Number);
const HS_TOKEN = 'bench-hs-token';

async function startAppservice(): Promise<{ url: string; received: () => number; close: () => void }> {
  const as = new AppService({ homeserverToken: HS_TOKEN });
  let count = 0;
  as.on('ephemeral', () => count++);
  await as.listen(0, '127.0.0.1', 511);
  const server = Reflect.get(as, 'server') as Server;
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, received: () => count, close: () => void as.close() };
}

async function run(batch: number): Promise<void> {
  const engine = new PresenceEngine({ config: presenceConfig('bench.local', { presence: { enabled: true }, rc_presence: { per_user: { per_second: 1e9, burst_count: 1e9 } } }) });
  const room = '!big:bench.local';
  const users = Array.from({ length: USERS }, (_, i) => `@user${i}:bench.local`);
  engine.batch(() => {
    engine.joinRoom(room, '@bridgebot:bench.local');
    for (const u of users) engine.joinRoom(room, u);
  });
  const as = await startAppservice();
  const registration = parseAppserviceRegistration(
    {
      id: 'bench',
      url: as.url,
      as_token: 'bench-as-token',
      hs_token: HS_TOKEN,
      sender_localpart: 'bridgebot',
      namespaces: { users: [{ regex: '@bridge_.*:bench\\.local', exclusive: true }] },
      'de.sorunome.msc2409.push_ephemeral': true,
    },
    'bench.local',
    'bench',
  );
  const delivery = new AppserviceDelivery({ engine, registration, store: new MemoryPositionStore(), maxEventsPerTransaction: batch });
  await delivery.start();
  await delivery.idle();
  const before = { ...delivery.stats };
  const t0 = performance.now();
  for (let r = 0; r < ROUNDS; r++) {
    engine.batch(() => {
      for (const u of users) engine.setPresence(u, { presence: r % 2 === 0 ? 'online' : 'unavailable', statusMsg: `round ${r}` });
    });
    await delivery.idle();
  }
  const seconds = (performance.now() - t0) / 1000;
  const txns = delivery.stats.transactions - before.transactions;
  const events = delivery.stats.events - before.events;
  console.log(
    JSON.stringify({
      users: USERS,
      rounds: ROUNDS,
      maxEventsPerTransaction: batch,
      seconds: Number(seconds.toFixed(2)),
      transactionsPerSecond: Math.round(txns / seconds),
      eventsPerSecond: Math.round(events / seconds),
      eventsAtAppservice: as.received(),
      failures: delivery.stats.failures,
    }),
  );
  await delivery.stop();
  as.close();
  engine.stop();
}

for (const b of BATCHES) await run(b);

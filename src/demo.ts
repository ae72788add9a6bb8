/**
 * `npm run demo`: a short simulated homeserver driven through the engine.
 * Users join rooms, clients sync, people set presence and chat, and a few
 * minutes of simulated time pass so the timers fire. Every sync stream's
 * emissions are printed, then a summary.
 *
 * Everything runs on a simulated clock, so the demo finishes in well under a
 * second and prints the same thing every time.
 */
import { SimulatedClock } from './testing/simulated-clock.js';
import { PresenceEngine } from './engine.js';
import { presenceConfig } from './config.js';
import { formatPresenceEvent } from './domain/format.js';
import { silentLogger } from './logger.js';

const clock = new SimulatedClock(Date.UTC(2026, 10, 23, 9, 0, 0));
const start = clock.now();
const engine = new PresenceEngine({
  config: presenceConfig('example.org', {
    presence: { busy_enabled: true },
    rc_presence: { per_user: { per_second: 10, burst_count: 20 } },
  }),
  clock,
  logger: silentLogger,
});

const alice = '@alice:example.org';
const bob = '@bob:example.org';
const carol = '@carol:example.org';
const dave = '@dave:example.org';
const t = () => `+${String(Math.round((clock.now() - start) / 1000)).padStart(4)}s`;

// Rooms: alice+bob+carol share !team, carol+dave share !random.
for (const u of [alice, bob, carol]) engine.joinRoom('!team:example.org', u);
for (const u of [carol, dave]) engine.joinRoom('!random:example.org', u);

// Open sync streams for everyone and print what each receives.
const received = new Map<string, number>();
for (const u of [alice, bob, carol, dave]) {
  engine.syncStream(u).subscribe((batch) => {
    received.set(u, (received.get(u) ?? 0) + batch.events.length);
    const items = batch.events.map((s) => {
      const e = formatPresenceEvent(s, clock.now());
      const msg = e.content.status_msg ? ` "${e.content.status_msg}"` : '';
      return `${e.sender.split(':')[0]}=${e.content.presence}${msg}`;
    });
    console.log(`${t()}  sync ${u.split(':')[0]!.padEnd(7)} token ${String(batch.token).padStart(3)}  ${items.join(', ')}`);
  });
}

function step(label: string, fn: () => void): void {
  console.log(`${t()}  ── ${label}`);
  fn();
}

step('alice opens her client (sync, set_presence=online)', () => {
  const h = engine.userSyncing(alice, { deviceId: 'PHONE' });
  clock.advance(1_000);
  h.end();
});
step('bob sets himself busy with a status', () => engine.setPresence(bob, { presence: 'busy', statusMsg: 'in a meeting' }));
clock.advance(5_000);
step('carol syncs with set_presence=unavailable', () => {
  const h = engine.userSyncing(carol, { setPresence: 'unavailable' });
  clock.advance(2_000);
  h.end();
});
step('dave comes online by PUT and sends a message every 20 s for a minute', () => {
  engine.setPresence(dave, { presence: 'online' });
  for (let i = 0; i < 3; i++) {
    clock.advance(20_000);
    engine.bumpActive(dave);
  }
});
step('alice keeps syncing every 20 s for 10 minutes', () => {
  for (let i = 0; i < 30; i++) {
    const h = engine.userSyncing(alice, { deviceId: 'PHONE' });
    clock.advance(20_000);
    h.end();
  }
});
step('nobody does anything for 2 hours', () => clock.advance(2 * 3_600_000));

const bobView = await engine.getNewEvents(bob);
console.log(`\n${t()}  bob's initial sync now: ${bobView.events.map((s) => `${s.userId}=${s.state}`).join(', ') || '(nobody online)'}`);
console.log(`\nsummary after ${Math.round((clock.now() - start) / 60_000)} simulated minutes:`);
for (const u of [alice, bob, carol, dave]) {
  const p = engine.getUserPresence(u);
  console.log(`  ${u.padEnd(20)} ${p.state.padEnd(12)} status=${JSON.stringify(p.statusMsg)}  received ${received.get(u) ?? 0} update(s)`);
}
const s = engine.stats;
console.log(
  `  notified changes ${s.updates}, deliveries ${s.deliveries}, log entries ${engine.log.position}, ` +
    `stream token ${engine.currentToken}, live actors ${s.liveActors}, dormant records ${s.dormantRecords}`,
);
engine.stop();

import { PresenceEngine, presenceConfig } from './src/index.js';
import { SimulatedClock, MemoryLogger } from './src/testing/index.js';
const hooks = process.argv[2] === 'hooks';
const clock = new SimulatedClock();
const opts: Record<string, unknown> = hooks ? { onTurn: () => {}, onTimerFired: () => {} } : {};
const engine = new PresenceEngine({ config: presenceConfig('t.l', { rc_presence: { per_user: { per_second: 1e9, burst_count: 1e9 } }, log: { kind: 'memory', retain: 1000 } }), clock, logger: new MemoryLogger(), ...opts });
const users = Array.from({ length: 1000 }, (_, i) => `@u${i}:t.l`);
for (const u of users) engine.joinRoom('!r:t.l', u);
const N = 400_000;
const states = ['online', 'unavailable'] as const;
for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) engine.setPresence(users[i % 1000]!, { presence: states[(i / 1000 | 0) % 2]! });
  const ms = performance.now() - t0;
  console.log(`${hooks ? 'hooks' : 'none '} round ${round}: ${(N / ms * 1000 / 1e6).toFixed(3)} M inputs/s`);
}

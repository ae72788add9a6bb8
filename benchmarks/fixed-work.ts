/**
 * Fixed-work A/B driver: the same inputs on every run, CPU milliseconds per
 * phase printed as one JSON line. For interleaved A/B runs of two checkouts
 * (docs/performance.md, engine split): bundle it in each with esbuild
 * (--bundle --platform=node --format=esm --packages=external) and run the two
 * bundles alternately; CPU time of fixed work is less disturbed by other load
 * than a rate over a time budget.
 */
import { buildEngine, drive } from './harness.js';
import { generateWorkload } from './workload.js';
import { InMemoryEventLog } from '../src/index.js';
import { PresenceEngine } from '../src/index.js';

const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const out: Record<string, number> = {};
const phase = (name: string, fn: () => void) => { const t = cpu(); fn(); out[name] = Math.round(cpu() - t); };

const w = generateWorkload({ seed: 7, users: 10_000, rooms: 1_000, roomsPerUser: 5, zipf: 1.1, listening: 0.2, changes: 95_000, simRate: 2000 });
const log = new InMemoryEventLog(0, { retain: Infinity });
const rig = buildEngine(w, { log });
let read = 0;
rig.sink = (b) => { for (const e of b.events) read += e.lastActiveTs > 0 ? 1 : 0; };
phase('warm', () => drive(rig, w, 0, 20_000));
phase('ingest.turn', () => drive(rig, w, 20_000, 45_000));
phase('ingest.batch', () => { for (let a = 45_000; a < 95_000; a += 256) rig.engine.batch(() => drive(rig, w, a, Math.min(a + 256, 95_000))); });
const e = rig.engine;
const token = e.currentToken;
phase('getNewEvents', () => {
  for (let k = 0; k < 20_000; k++) void e.getNewEvents(w.userIds[w.listeners[k % w.listeners.length] as number] as string, Math.max(0, token - 1 - (k % 500)));
});
const config = e.config;
phase('replay', () => { const r = new PresenceEngine({ config, log, logger: e.logger }); r.stop(); });
e.stop();
// Large room: 5,000 members, all listening; one input per turn.
const big = generateWorkload({ seed: 9, users: 5_000, rooms: 1, roomsPerUser: 1, zipf: 1, listening: 1, changes: 6_000, simRate: 2000 });
const bigRig = buildEngine(big);
bigRig.sink = (b) => { for (const x of b.events) read += x.lastActiveTs > 0 ? 1 : 0; };
phase('large-room', () => drive(bigRig, big, 0, 6_000));
bigRig.engine.stop();
process.stdout.write(JSON.stringify({ ...out, read }) + '\n');

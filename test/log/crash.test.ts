/**
 * Crash safety: a child process appends to a durable engine's log and prints
 * every acknowledged entry; it is killed with SIGKILL at random points (seeded),
 * restarted on the same directory, and so on. After every kill the parent checks:
 *
 *  - every acknowledged entry is in the log, unchanged, at its position;
 *  - entries written but not acknowledged may be present (then they are kept);
 *  - a torn tail (simulated by appending a partial record after some kills) is
 *    truncated with a warning;
 *  - the engine restored from the newest snapshot plus the log tail equals an
 *    engine that replays every entry from position 1 in memory.
 *
 * Seed: CRASH_SEED (default below). Iterations: CRASH_RUNS (default 24), within
 * CRASH_BUDGET_MS per fsync policy (default 22 s; at least 4 runs).
 */
import { spawn } from 'node:child_process';
import { appendFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogEntry, PresenceEvent } from '../../src/domain/events.js';
import { PresenceEngine } from '../../src/engine.js';
import { InMemoryEventLog } from '../../src/log/event-log.js';
import { FileEventLog, type FsyncPolicy } from '../../src/log/file-log.js';
import { MemoryLogger, silentLogger } from '../../src/logger.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
import { crashConfig, rng } from './fixtures/workload.js';
import { bundledFixture, canonical, tempDir } from './support.js';

const SEED = Number(process.env.CRASH_SEED ?? 8_2026);
const RUNS = Number(process.env.CRASH_RUNS ?? 24);
/** Wall-time budget per policy: on a loaded machine fewer runs fit (at least MIN_RUNS always run). */
const BUDGET_MS = Number(process.env.CRASH_BUDGET_MS ?? 22_000);
const MIN_RUNS = 4;
const WRITER = resolve(import.meta.dirname, 'fixtures/writer.ts');

/**
 * How to start the writer. `node --import tsx writer.ts` spends seconds loading
 * hundreds of modules through the tsx hooks, so when esbuild (a dependency of
 * tsx) is available the same source is bundled once into one file and run with
 * plain node: many more kills fit in the time budget. CRASH_TSX=1 forces tsx.
 */
let command: string[] = ['--import', 'tsx', WRITER];
const bundleDir = tempDir('presence-crash-writer-');
beforeAll(async () => {
  if (process.env.CRASH_TSX) return;
  command = await bundledFixture(WRITER, bundleDir.dir);
});
afterAll(() => bundleDir.cleanup());

interface RunResult {
  acks: LogEntry[];
  ready: boolean;
  killed: boolean;
  stderr: string;
}

/** Start the writer, kill it with SIGKILL at a random point, collect what it acknowledged. */
function runWriter(dir: string, seed: number, clockStart: number, fsync: FsyncPolicy, random: () => number): Promise<RunResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [...command, dir, String(seed), String(clockStart), fsync], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let stderr = '';
    let acks = 0;
    let killed = false;
    const kill = () => {
      if (!killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    // 1 run in 6 is killed on a timer (often during start-up and recovery), the others after a random number of acks.
    const byTime = random() < 1 / 6;
    const ackLimit = 1 + Math.floor(random() ** 2 * 300);
    const timer = byTime ? setTimeout(kill, 200 + Math.floor(random() * 1500)) : setTimeout(kill, 15_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (!byTime) {
        for (let i = chunk.indexOf('\n'); i >= 0; i = chunk.indexOf('\n', i + 1)) acks++; // one line per ack (plus `ready`)
        if (acks >= ackLimit) kill();
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', () => {
      clearTimeout(timer);
      const lines = out.split('\n');
      lines.pop(); // an unterminated last line was cut by the kill: not acknowledged
      const result: RunResult = { acks: [], ready: false, killed, stderr };
      for (const line of lines) {
        if (line.startsWith('ready ')) result.ready = true;
        else if (line.startsWith('ack ')) result.acks.push(JSON.parse(line.slice(4)) as LogEntry);
      }
      done(result);
    });
  });
}

/** Simulate a write torn by a crash: a partial record after the last complete one. */
function tearTail(dir: string, random: () => number): void {
  const segs = readdirSync(dir).filter((n) => n.endsWith('.log')).sort();
  const last = join(dir, segs[segs.length - 1] as string);
  const kind = Math.floor(random() * 3);
  if (kind === 0) {
    appendFileSync(last, Buffer.from([0x40, 0x00])); // half a length field
  } else if (kind === 1) {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(500, 0); // a length longer than what follows
    header.writeUInt32LE(0xdeadbeef, 4);
    appendFileSync(last, Buffer.concat([header, Buffer.from('{"p":')]));
  } else {
    const body = Buffer.from('{"p":1,"e":[{"type":"user.step"}]}');
    const header = Buffer.alloc(8);
    header.writeUInt32LE(body.length, 0);
    header.writeUInt32LE(12345, 4); // wrong checksum: the bytes did not all reach the disk
    appendFileSync(last, Buffer.concat([header, body]));
  }
  if (random() < 0.5) writeFileSync(join(dir, 'snapshot-00000000000000999999.snap.tmp'), 'half a snapshot');
}

describe('crash safety (SIGKILL at random points, restart, verify)', () => {
  it.each<[FsyncPolicy, number]>([
    ['always', RUNS],
    ['batch', Math.max(MIN_RUNS, Math.floor(RUNS / 4))],
  ])('fsync %s: no acknowledged entry is lost over up to %i kills', async (fsync, runs) => {
    const { dir, cleanup } = tempDir();
    const random = rng(SEED + (fsync === 'always' ? 0 : 1));
    /** Every entry known to be in the log, by position (acknowledged, or seen there after a kill). */
    const known = new Map<number, PresenceEvent>();
    let maxAcked = 0;
    let totalAcks = 0;
    let torn = 0;
    let realTorn = 0;
    const started = performance.now();
    try {
      let run = 0;
      for (; run < runs && (run < MIN_RUNS || performance.now() - started < (fsync === 'always' ? BUDGET_MS : BUDGET_MS / 2)); run++) {
        const t0 = performance.now();
        const r = await runWriter(dir, SEED * 1000 + run, 1_700_000_000_000 + run * 1_000_000_000, fsync, random);
        if (process.env.CRASH_DEBUG) console.info(`run ${run}: ${r.acks.length} acks, ready ${r.ready}, ${Math.round(performance.now() - t0)} ms`);
        expect(r.killed, `run ${run} ended on its own: ${r.stderr}`).toBe(true);
        expect(r.stderr).not.toMatch(/ERROR|Error:/);
        for (const a of r.acks) {
          const prev = known.get(a.position);
          if (prev !== undefined) expect(a.event).toEqual(prev);
          known.set(a.position, a.event);
          maxAcked = Math.max(maxAcked, a.position);
        }
        totalAcks += r.acks.length;

        const inject = random() < 0.3;
        if (inject) {
          tearTail(dir, random);
          torn++;
        }
        const logger = new MemoryLogger();
        const log = FileEventLog.open(dir, { logger, fsync: 'never' });
        try {
          // A kill tears at most the tail: never anything recovery reports as corruption.
          expect(log.recovery.corruption).toEqual([]);
          if (inject) {
            expect(log.recovery.truncatedBytes).toBeGreaterThan(0);
            expect(logger.warnings().some((w) => w.includes('torn record at the end of'))).toBe(true);
          } else if (log.recovery.truncatedBytes > 0) realTorn++;
          // Every acknowledged entry is there.
          expect(log.position).toBeGreaterThanOrEqual(maxAcked);
          const seen = new Set<number>();
          for (const e of log.read(log.firstPosition)) {
            seen.add(e.position);
            const k = known.get(e.position);
            if (k !== undefined) expect(e.event, `entry ${e.position}`).toEqual(k);
            else known.set(e.position, e.event); // written, not acknowledged before the kill: kept
          }
          for (let p = log.firstPosition + 1; p <= log.position; p++) expect(seen.has(p), `entry ${p} missing`).toBe(true);
          for (const p of known.keys()) expect(p, 'an entry beyond the end of the log').toBeLessThanOrEqual(log.position);

          // Snapshot + tail equals a full replay from position 1.
          const snapshot = log.loadSnapshot();
          const restored = new PresenceEngine({ config: crashConfig(), clock: new SimulatedClock(), logger: silentLogger, log, ...(snapshot ? { snapshot } : {}) });
          const all: PresenceEvent[] = [];
          for (let p = 1; p <= log.position; p++) all.push(known.get(p) as PresenceEvent);
          const memory = new InMemoryEventLog();
          memory.append(all);
          const replayed = new PresenceEngine({ config: crashConfig(), clock: new SimulatedClock(), logger: silentLogger, log: memory });
          expect(canonical(restored.snapshot())).toEqual(canonical(replayed.snapshot()));
          restored.stop();
          replayed.stop();
        } finally {
          log.closeSync();
        }
      }
      const final = FileEventLog.open(dir, { logger: silentLogger });
      const usage = final.diskUsage();
      final.closeSync();
      console.info(
        `crash test (fsync ${fsync}): ${run} kills, ${totalAcks} acks, log at ${maxAcked}+, ${torn} simulated and ${realTorn} real torn tails, ` +
          `${usage.segments} segments, ${usage.snapshots} snapshots, ${usage.bytes} bytes on disk, ${Math.round(performance.now() - started)} ms`,
      );
      expect(totalAcks).toBeGreaterThan(run * 5);
    } finally {
      cleanup();
    }
  }, BUDGET_MS + 38_000);
});

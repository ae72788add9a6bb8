/**
 * SIGKILL loop (issue 19): a child process (fixtures/input-writer.ts) sets
 * presence through a durable engine on the file log and prints every input
 * once the call has returned (acknowledged). It is killed with SIGKILL at
 * random points (after a random number of acknowledgements, or on a timer,
 * often during start-up and recovery) and restarted on the same directory,
 * over and over. After every kill:
 *
 *  - recovery reports no corruption (a kill can tear at most the tail);
 *  - every acknowledged input whose entry is still in the log (not compacted
 *    into a snapshot) is there;
 *  - a durable engine restarted on the directory shows, for every user, the
 *    last acknowledged input or a later one (so compacted inputs survive too).
 *
 * Kills: SIGKILL_RUNS, default 8; DEEP=1 (npm run test:deep) 100. Seed: SIGKILL_SEED.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDurableEngine } from '../../src/hosting/durable.js';
import { FileEventLog, type FsyncPolicy } from '../../src/log/file-log.js';
import { MemoryLogger } from '../../src/logger.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
import { crashConfig, rng, USERS } from './fixtures/workload.js';
import { bundledFixture, tempDir } from './support.js';

const RUNS = Number(process.env.SIGKILL_RUNS ?? (process.env.DEEP ? 100 : 8));
const SEED = Number(process.env.SIGKILL_SEED ?? 19_2026);
const WRITER = resolve(import.meta.dirname, 'fixtures/input-writer.ts');

const bundleDir = tempDir('presence-sigkill-writer-');
let command: string[] = [];
beforeAll(async () => {
  command = await bundledFixture(WRITER, bundleDir.dir);
});
afterAll(() => bundleDir.cleanup());

interface Ack {
  readonly run: number;
  readonly i: number;
  readonly user: number;
  readonly position: number;
}

function runWriter(dir: string, run: number, fsync: FsyncPolicy, random: () => number): Promise<{ acks: Ack[]; stderr: string; killed: boolean }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [...command, dir, String(run), fsync], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let lines = 0;
    let killed = false;
    const kill = () => {
      if (!killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    const byTime = random() < 0.2;
    const ackLimit = 1 + Math.floor(random() ** 2 * 400);
    const timer = setTimeout(kill, byTime ? 100 + Math.floor(random() * 1200) : 20_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (byTime) return;
      for (let k = chunk.indexOf('\n'); k >= 0; k = chunk.indexOf('\n', k + 1)) lines++;
      if (lines > ackLimit) kill();
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', () => {
      clearTimeout(timer);
      const complete = out.split('\n');
      complete.pop(); // a line cut by the kill was not acknowledged
      const acks = complete
        .filter((l) => l.startsWith('ack '))
        .map((l) => l.split(' ').map(Number))
        .map(([, i, user, position]) => ({ run, i: i as number, user: user as number, position: position as number }));
      done({ acks, stderr, killed });
    });
  });
}

const TAG = /#(\d+)\.(\d+)#/;
const later = (a: { run: number; i: number }, b: { run: number; i: number }) => a.run > b.run || (a.run === b.run && a.i >= b.i);

describe('SIGKILL loop: every acknowledged input survives every kill', () => {
  it(`${RUNS} kills`, async () => {
    const { dir, cleanup } = tempDir('presence-sigkill-');
    const random = rng(SEED);
    const lastAcked = new Map<number, Ack>();
    const totals = { kills: 0, acks: 0, checkedInLog: 0, checkedInState: 0, lost: 0, tornTails: 0 };
    const t0 = performance.now();
    try {
      for (let run = 0; run < RUNS; run++) {
        const r = await runWriter(dir, run, run % 2 === 0 ? 'batch' : 'always', random);
        expect(r.killed, `run ${run} ended on its own: ${r.stderr}`).toBe(true);
        expect(r.stderr).not.toMatch(/ERROR|Error:/);
        totals.kills++;
        totals.acks += r.acks.length;
        for (const a of r.acks) lastAcked.set(a.user, a);

        const log = FileEventLog.open(dir, { logger: new MemoryLogger(), fsync: 'never' });
        try {
          expect(log.recovery.corruption).toEqual([]);
          if (log.recovery.truncatedBytes > 0) totals.tornTails++;
          const tags = new Set<string>();
          for (const e of log.read(log.firstPosition)) {
            const m = TAG.exec(JSON.stringify(e.event));
            if (m !== null) tags.add(m[0]);
          }
          for (const a of r.acks) {
            if (a.position <= log.firstPosition) continue; // compacted: checked through the restored state below
            totals.checkedInLog++;
            if (!tags.has(`#${a.run}.${a.i}#`)) totals.lost++;
          }
        } finally {
          log.closeSync();
        }

        const restarted = openDurableEngine({ config: crashConfig(), path: dir, clock: new SimulatedClock(), logger: new MemoryLogger(), fsync: 'never' });
        try {
          for (const [user, ack] of lastAcked) {
            totals.checkedInState++;
            const m = TAG.exec(restarted.engine.getUserPresence(USERS[user] as string).statusMsg ?? '');
            if (m === null || !later({ run: Number(m[1]), i: Number(m[2]) }, ack)) totals.lost++;
          }
        } finally {
          await restarted.close({ snapshot: false });
        }
        expect(totals.lost, `after kill ${run}`).toBe(0);
      }
      console.info(`sigkill loop: ${JSON.stringify(totals)} in ${Math.round(performance.now() - t0)} ms`);
      expect(totals.acks).toBeGreaterThan(RUNS * 5);
    } finally {
      cleanup();
    }
  }, 60_000 + RUNS * 4_000);
});

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { presenceConfig, type PresenceConfig } from '../../src/config.js';
import { PresenceEngine } from '../../src/engine.js';
import { ConfigError } from '../../src/errors.js';
import { openDurableEngine, type DurableEngine, type DurableEngineOptions } from '../../src/hosting/durable.js';
import { InMemoryEventLog } from '../../src/log/event-log.js';
import { MemoryLogger, silentLogger } from '../../src/logger.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
import { Workload, crashConfig, rng } from './fixtures/workload.js';
import { canonical, tempDir } from './support.js';

const T0 = 1_700_000_000_000;
const cleanups: (() => void)[] = [];
const running: DurableEngine[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) await d.close({ snapshot: false });
  for (const c of cleanups.splice(0)) c();
});

function dir(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

function config(path: string, log: Record<string, unknown> = {}): PresenceConfig {
  return presenceConfig('t.test', {
    rc_presence: { per_user: { per_second: 1_000_000, burst_count: 1_000_000 } },
    log: { kind: 'file', path, fsync: 'always', snapshot_every: 1_000, ...log },
  });
}

function start(options: Omit<DurableEngineOptions, 'logger'> & { logger?: MemoryLogger }): DurableEngine & { logger: MemoryLogger } {
  const logger = options.logger ?? new MemoryLogger();
  const d = openDurableEngine({ ...options, logger });
  running.push(d);
  return Object.assign(d, { logger });
}

/** A crash: the process is gone, nothing is flushed or snapshotted; the log's bytes are already in the kernel. */
function crash(d: DurableEngine): void {
  running.splice(running.indexOf(d), 1);
  d.engine.stop();
  d.log.closeSync();
}

describe('restart re-arms timers (spec §2.11: stale states self-correct)', () => {
  it.each([
    ['after a crash (log tail only)', false],
    ['after a clean close (snapshot)', true],
  ])('%s: a user online before the restart goes offline after the sync timeout', async (_name, clean) => {
    const path = dir();
    const clock = new SimulatedClock(T0);
    const d1 = start({ config: config(path), clock });
    d1.engine.setPresence('@alice:t.test', { presence: 'online', statusMsg: 'here' });
    clock.advance(10_000);
    if (clean) {
      running.splice(running.indexOf(d1), 1);
      await d1.close();
    } else crash(d1);

    const clock2 = new SimulatedClock(T0 + 12_000);
    const d2 = start({ config: config(path), clock: clock2 });
    expect(d2.recovery.snapshotPosition > 0).toBe(clean);
    expect(d2.engine.getUserPresence('@alice:t.test').state).toBe('online');
    clock2.advance(10_000); // 22 s after the PUT
    expect(d2.engine.getUserPresence('@alice:t.test').state).toBe('online');
    clock2.advance(20_000); // 42 s: past the 30 s sync timeout and the next timer tick
    const after = d2.engine.getUserPresence('@alice:t.test');
    expect(after.state).toBe('offline');
    expect(after.statusMsg).toBe('here');
    // The timeout itself is logged: a third start sees the user offline.
    crash(d2);
    const d3 = start({ config: config(path), clock: new SimulatedClock(T0 + 60_000) });
    expect(d3.engine.getUserPresence('@alice:t.test').state).toBe('offline');
  });

  it('a sync in flight at the crash is ended on restart, so the user times out', () => {
    const path = dir();
    const clock = new SimulatedClock(T0);
    const d1 = start({ config: config(path), clock });
    d1.engine.userSyncing('@bob:t.test'); // never ended: the process dies mid-request
    expect(d1.engine.getUserRecord('@bob:t.test').syncs).not.toEqual({});
    crash(d1);

    const clock2 = new SimulatedClock(T0 + 1_000);
    const d2 = start({ config: config(path), clock: clock2 });
    expect(d2.engine.getUserRecord('@bob:t.test').syncs).toEqual({});
    expect(d2.engine.getUserPresence('@bob:t.test').state).toBe('online');
    clock2.advance(45_000);
    expect(d2.engine.getUserPresence('@bob:t.test').state).toBe('offline');
  });
});

describe('openDurableEngine: restored state equals a full replay', () => {
  function runWorkload(path: string, ops: number, seed: number) {
    const clock = new SimulatedClock(T0);
    const d = start({ config: crashConfig(), path, clock, snapshotEvery: 150, segmentBytes: 16 * 1024, fsync: 'never' });
    const mirror = new InMemoryEventLog();
    d.log.subscribe().subscribe((e) => mirror.append([e.event]));
    const work = new Workload(d.engine, clock, rng(seed));
    for (let i = 0; i < ops; i++) work.step();
    return { d, mirror };
  }

  const replay = (mirror: InMemoryEventLog) =>
    canonical(new PresenceEngine({ config: crashConfig(), clock: new SimulatedClock(), logger: silentLogger, log: mirror }).snapshot());

  it.each([
    ['crash', false],
    ['clean close', true],
  ])('after a %s', async (_name, clean) => {
    const path = dir();
    const { d, mirror } = runWorkload(path, 1_500, 7);
    expect(d.lastSnapshot).toBeDefined();
    const live = canonical(d.engine.snapshot());
    if (clean) {
      running.splice(running.indexOf(d), 1);
      await d.close();
    } else crash(d);
    expect(live).toEqual(replay(mirror));
    const d2 = start({ config: crashConfig(), path, clock: new SimulatedClock(T0), endRestoredSyncs: false });
    expect(d2.recovery.replayedEntries).toBe(clean ? 0 : d2.log.position - d2.recovery.snapshotPosition);
    expect(canonical(d2.engine.snapshot())).toEqual(replay(mirror));
  });

  it('falls back to the previous snapshot when the newest is corrupt', () => {
    const path = dir();
    const { d, mirror } = runWorkload(path, 1_500, 11);
    crash(d);
    const snaps = readdirSync(path).filter((n) => n.endsWith('.snap')).sort();
    expect(snaps).toHaveLength(2);
    const newest = join(path, snaps[1] as string);
    const bytes = readFileSync(newest);
    bytes[100] = (bytes[100] as number) ^ 0x01;
    writeFileSync(newest, bytes);
    const d2 = start({ config: crashConfig(), path, clock: new SimulatedClock(T0), endRestoredSyncs: false });
    expect(d2.recovery.corruptSnapshots).toEqual([newest]);
    expect(d2.recovery.snapshotPosition).toBe(Number(/(\d{20})/.exec(snaps[0] as string)?.[1]));
    expect(d2.logger.warnings().some((w) => w.includes('falling back to the previous snapshot'))).toBe(true);
    expect(canonical(d2.engine.snapshot())).toEqual(replay(mirror));
  });
});

describe('compaction: disk use follows users, not history', () => {
  it('many updates for a few users keep the directory small', () => {
    const path = dir();
    const clock = new SimulatedClock(T0);
    const d = start({ config: config(path, { fsync: 'never', snapshot_every: 400 }), clock, segmentBytes: 32 * 1024 });
    const users = ['@a:t.test', '@b:t.test', '@c:t.test', '@d:t.test', '@e:t.test'];
    let appendedBytes = 0;
    d.log.subscribe().subscribe((e) => (appendedBytes += JSON.stringify(e).length));
    const usage: number[] = [];
    for (let i = 1; i <= 12_000; i++) {
      const u = users[i % users.length] as string;
      d.engine.setPresence(u, { presence: i % 2 === 0 ? 'online' : 'unavailable', statusMsg: `status ${i}` });
      if (i % 600 === 0) usage.push(d.log.diskUsage().bytes);
      if (i % 100 === 0) clock.advance(1_000);
    }
    expect(d.log.position).toBeGreaterThanOrEqual(12_000);
    expect(appendedBytes).toBeGreaterThan(1_500_000); // the history
    const max = Math.max(...usage);
    expect(max).toBeLessThan(180_000); // ≈ 2 snapshots + the entries after the older one (each entry carries its cause, ~25 B here)
    // Flat: the second half of the run uses no more disk than the first.
    expect(Math.max(...usage.slice(10))).toBeLessThanOrEqual(Math.max(...usage.slice(0, 10)) * 1.2);
    const info = d.log.diskUsage();
    expect(info.snapshots).toBe(2);
    expect(info.segments).toBeLessThanOrEqual(8); // the segments after the older snapshot (≈ 60 KB / 32 KiB) + the active one
  });
});

describe('openDurableEngine: configuration', () => {
  it('takes the directory, fsync policy and snapshot interval from the log config', () => {
    const path = dir();
    const d = start({ config: { server_name: 't.test', log: { kind: 'file', path, fsync: 'never', snapshot_every: 3 } }, clock: new SimulatedClock(T0) });
    expect(d.log.dir.endsWith(path.split('/').pop() as string)).toBe(true);
    expect(d.log.fsyncPolicy).toBe('never');
    d.engine.joinRoom('!r:t.test', '@a:t.test');
    d.engine.joinRoom('!r:t.test', '@b:t.test');
    d.engine.joinRoom('!r:t.test', '@c:t.test');
    expect(d.lastSnapshot?.position).toBe(3);
  });

  it('needs a path', () => {
    expect(() => openDurableEngine({ config: { server_name: 't.test' } })).toThrow(ConfigError);
  });
});

/**
 * Test support for the distributed tests: a throwaway redis-server on a free
 * loopback port, and engine child processes spoken to over JSON lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import type { NodeSpec } from './fixtures/node.js';
import { RedisKeys } from '../../src/log/redis-partitions.js';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last !== undefined ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** SIGKILL the server, keeping its directory (an AOF survives). */
  crash(): Promise<void>;
  /** Start it again on the same port and directory, with the same settings (`wipe`: its data deleted first, as without persistence). */
  restart(options?: { wipe?: boolean }): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that stops answering without closing connections. */
  pause(): void;
  resume(): void;
}

export interface RedisServerOptions {
  /** `appendonly yes` with `appendfsync always` (an acknowledged write survives a crash). Default false. */
  readonly aof?: boolean;
  /** More `redis-server` arguments. */
  readonly args?: readonly string[];
}

/** Start `redis-server` on a free loopback port, in a temp dir; no persistence unless `aof`. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER)) {
    throw new Error(
      `redis-server not found at ${REDIS_SERVER}: the distributed tests need a real Redis. ` +
        `Install it with \`sudo apt-get install -y redis-server\` (Debian/Ubuntu; .ci/run does this in CI) ` +
        `or point REDIS_SERVER at a redis-server binary (Redis >= 6.2).`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'presence-redis-'));
  const port = await freePort();
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir,
    ...(options.aof === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    ...(options.args ?? []),
  ];
  let child: ChildProcess = await spawnRedis(args, port);
  const url = `redis://127.0.0.1:${port}`;
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    }
  };
  return {
    url,
    port,
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
    crash: kill,
    restart: async (o = {}) => {
      await kill();
      if (o.wipe === true) for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true, force: true });
      child = await spawnRedis(args, port);
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
  };
}

async function spawnRedis(args: readonly string[], port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const probe = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await waitFor('redis-server to answer PING', async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
      if (probe.status !== 'ready') await probe.connect().catch(() => probe.disconnect());
      return (await probe.ping()) === 'PONG';
    }, 10_000, 50);
  } finally {
    probe.disconnect();
  }
  return child;
}

export interface Batch {
  readonly user: string;
  readonly t: number;
  readonly events: { userId: string; state: string; statusMsg: string | null }[];
}

type Reply = { id: number; ok: boolean; result?: unknown; error?: { name: string; code?: string; message: string } };

/** An engine child process (test/distributed/fixtures/node.ts). */
export class NodeProcess {
  readonly batches: Batch[] = [];
  readonly logs: { level: string; message: string }[] = [];
  readonly ownership: { partition: number; change: string }[] = [];
  instanceId = '';
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly ready: Promise<void>;
  private exited = false;

  constructor(spec: NodeSpec) {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'test/distributed/fixtures/node.ts', JSON.stringify(spec)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: process.cwd(),
    });
    let stderr = '';
    this.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    // A request written just as the process dies fails with EPIPE on stdin: its promise is rejected on
    // 'exit' below; unhandled, the stream error would fail the whole test file.
    this.child.stdin?.on('error', () => {});
    let onReady: () => void = () => {};
    let onFail: (e: Error) => void = () => {};
    this.ready = new Promise<void>((res, rej) => {
      onReady = res;
      onFail = rej;
    });
    this.child.once('exit', (code, signal) => {
      this.exited = true;
      const e = new Error(`node ${spec.name} exited (code ${String(code)}, signal ${String(signal)}): ${stderr.slice(-2000)}`);
      onFail(e);
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (m.event === 'ready') {
        this.instanceId = String(m.instanceId);
        onReady();
      } else if (m.event === 'batch') this.batches.push(m as unknown as Batch);
      else if (m.event === 'log') this.logs.push(m as unknown as { level: string; message: string });
      else if (m.event === 'ownership') this.ownership.push(m as unknown as { partition: number; change: string });
      else if (typeof m.id === 'number') {
        const r = m as unknown as Reply;
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        if (r.ok) p?.resolve(r.result);
        else p?.reject(Object.assign(new Error(r.error?.message ?? 'failed'), { name: r.error?.name ?? 'Error', code: r.error?.code }));
      }
    });
  }

  whenReady(timeoutMs = 45_000): Promise<void> {
    return Promise.race([this.ready, new Promise<void>((_, rej) => setTimeout(() => rej(new Error('node did not start in time')), timeoutMs).unref())]);
  }

  get alive(): boolean {
    return !this.exited;
  }

  request<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Error('node has exited'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin?.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  /** The latest state of `target` seen on `watcher`'s sync stream, if any. */
  seen(watcher: string, target: string): { state: string; statusMsg: string | null } | undefined {
    for (let i = this.batches.length - 1; i >= 0; i--) {
      const b = this.batches[i] as Batch;
      if (b.user !== watcher) continue;
      const e = b.events.find((x) => x.userId === target);
      if (e !== undefined) return e;
    }
    return undefined;
  }

  /** Send a signal (SIGSTOP / SIGCONT: a process that freezes without closing its connections). */
  signal(sig: NodeJS.Signals): void {
    if (!this.exited) this.child.kill(sig);
  }

  /** SIGKILL: no clean-up, leases left to expire. */
  async kill(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGCONT');
    this.child.kill('SIGKILL');
    await exited;
  }

  /** Graceful stop (releases leases). */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.request('stop').catch(() => {});
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    await this.kill();
  }
}

/**
 * A TCP proxy in front of a Redis, to cut one process off: `blackhole()` keeps
 * connections open but forwards nothing either way (a partition where packets
 * vanish: commands hang until a timeout); `restore()` drops the stalled
 * connections (clients reconnect) and forwards again.
 */
export interface CutProxy {
  readonly url: string;
  blackhole(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startCutProxy(targetPort: number): Promise<CutProxy> {
  let passing = true;
  const pairs = new Set<[Socket, Socket]>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('data', (d) => passing && upstream.write(d));
    upstream.on('data', (d) => passing && client.write(d));
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  const port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : 0);
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    blackhole: () => {
      passing = false;
    },
    restore: () => {
      for (const [c, u] of [...pairs]) {
        c.destroy();
        u.destroy();
      }
      pairs.clear();
      passing = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const [c, u] of pairs) {
          c.destroy();
          u.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

/**
 * Split-brain writes in one partition's stream entries (`[id, fields]`, oldest
 * first): an entry of a tenure written after a later tenure's, within one
 * generation (a `recovery-` writer starts a new generation).
 */
export function splitBrainEntries(partition: number, entries: readonly (readonly [string, readonly string[]])[]): string[] {
  const bad: string[] = [];
  let maxEpoch = 0;
  for (const [id, f] of entries) {
    const w = f[f.indexOf('w') + 1] ?? '';
    if (w.startsWith('recovery-')) {
      maxEpoch = 0;
      continue;
    }
    const epoch = Number(w.slice(w.lastIndexOf('/') + 1));
    if (epoch < maxEpoch) bad.push(`partition ${partition} entry ${id} by ${w} after epoch ${maxEpoch}`);
    maxEpoch = Math.max(maxEpoch, epoch);
  }
  return bad;
}

/** Every status message written in the partition streams of `prefix`, in logged steps or in checkpoints. */
export async function statusesInStreams(client: Redis, prefix: string, partitions: number): Promise<Set<string>> {
  type Step = { presence?: { statusMsg?: string | null } };
  const keys = new RedisKeys(prefix, partitions);
  const seen = new Set<string>();
  for (let p = 0; p < partitions; p++) {
    for (const [, f] of (await client.xrange(keys.stream(p), '-', '+')) as [string, string[]][]) {
      const e = JSON.parse(f[f.indexOf('e') + 1] ?? 'null') as Step[] | { checkpoint: { records: [string, Step][] } } | null;
      const steps = Array.isArray(e) ? e : (e?.checkpoint.records.map(([, step]) => step) ?? []);
      for (const step of steps) if (typeof step.presence?.statusMsg === 'string') seen.add(step.presence.statusMsg);
    }
  }
  return seen;
}

/**
 * A Redis Cluster for the tests: three masters with one replica each, started
 * from redis-server on loopback ports (AOF always), with a short
 * `cluster-node-timeout` so a killed master's replica takes over within seconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { freePort, REDIS_SERVER, waitFor } from './support.js';

export interface ClusterNodeInfo {
  readonly id: string;
  readonly port: number;
  readonly master: boolean;
  readonly failed: boolean;
  readonly slots: boolean;
  /** For a replica: its master's id. */
  readonly masterId: string | undefined;
}

export interface TestCluster {
  readonly ports: readonly number[];
  /** An ioredis Cluster client (cast to Redis, as RedisPresenceNode takes it). */
  connect(): Redis;
  /** The cluster's view from a live node. */
  nodes(): Promise<ClusterNodeInfo[]>;
  /** Every live replica has finished its sync with its master (only such a replica can take over). */
  replicasInSync(): Promise<boolean>;
  /** Run one command on server `i` directly (not through the cluster client). */
  command(i: number, ...args: string[]): Promise<unknown>;
  /** Send a signal to server `i` (SIGSTOP / SIGCONT). */
  signal(i: number, sig: NodeJS.Signals): void;
  /** SIGKILL server `i` (its AOF and nodes.conf stay). */
  kill(i: number): Promise<void>;
  /** Start server `i` again with its files: it rejoins (as a replica once its slots moved). */
  restart(i: number): Promise<void>;
  alive(i: number): boolean;
  /** The server's log (for diagnostics). */
  readonly dir: string;
  stop(): void;
}

export async function startCluster(nodeTimeoutMs = 1_000): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'presence-cluster-'));
  const ports: number[] = [];
  for (let i = 0; i < 6; i++) ports.push(await freePort());
  const args = (port: number): string[] => [
    '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
    '--cluster-node-timeout', String(nodeTimeoutMs), '--cluster-require-full-coverage', 'no', '--repl-diskless-sync-delay', '0',
    '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--appenddirname', `aof-${port}`, '--dir', dir, '--logfile', `redis-${port}.log`,
  ];
  const children: (ChildProcess | undefined)[] = ports.map((p) => spawn(REDIS_SERVER, args(p), { stdio: 'ignore' }));
  // Servers outlive a test that failed half-way or a worker torn down: kill them when this process exits.
  const killAll = (): void => {
    for (const c of children) if (c !== undefined && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const client = (port: number): Redis => {
    const c = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    c.on('error', () => {});
    return c;
  };
  const up = async (port: number): Promise<void> => {
    await waitFor(`redis-server on ${port}`, async () => {
      const c = client(port);
      try {
        await c.connect();
        return (await c.ping()) === 'PONG';
      } finally {
        c.disconnect();
      }
    }, 10_000, 50);
  };
  try {
    await formCluster();
  } catch (error) {
    killAll();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  async function formCluster(): Promise<void> {
  const clients: Redis[] = [];
  for (const port of ports) {
    await up(port);
    const c = client(port);
    await c.connect();
    clients.push(c);
  }
  const ranges = [[0, 5460], [5461, 10922], [10923, 16383]] as const;
  for (let i = 0; i < 3; i++) await clients[i]!.call('CLUSTER', 'ADDSLOTSRANGE', String(ranges[i]![0]), String(ranges[i]![1]));
  for (let i = 1; i < 6; i++) await clients[i]!.call('CLUSTER', 'MEET', '127.0.0.1', String(ports[0]));
  await waitFor('all nodes know each other', async () => ((await clients[0]!.call('CLUSTER', 'NODES')) as string).trim().split('\n').length === 6, 20_000, 100);
  const ids = await Promise.all(clients.slice(0, 3).map((c) => c.call('CLUSTER', 'MYID') as Promise<string>));
  for (let i = 3; i < 6; i++) await waitFor('replica set', () => clients[i]!.call('CLUSTER', 'REPLICATE', ids[i - 3]!).then(() => true, () => false), 20_000, 100);
  await waitFor('cluster state ok', async () => (await Promise.all(clients.map((c) => c.call('CLUSTER', 'INFO') as Promise<string>))).every((x) => x.includes('cluster_state:ok')), 30_000, 100);
  for (const c of clients) c.disconnect();
  }

  const alive = (i: number): boolean => {
    const ch = children[i];
    return ch !== undefined && ch.exitCode === null && ch.signalCode === null;
  };
  const cluster: TestCluster = {
    ports,
    connect: () => {
      const c = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { commandTimeout: 1_000 } });
      c.on('error', () => {});
      return c as unknown as Redis;
    },
    nodes: async () => {
      for (let i = 0; i < ports.length; i++) {
        if (!alive(i)) continue;
        const c = client(ports[i]!);
        try {
          await c.connect();
          const text = (await c.call('CLUSTER', 'NODES')) as string;
          return text.trim().split('\n').map((line) => {
            const f = line.split(' ');
            const flags = f[2] ?? '';
            return { id: f[0] ?? '', port: Number((f[1] ?? '').split(':')[1]?.split('@')[0]), master: flags.includes('master'), failed: flags.includes('fail'), slots: f.length > 8, masterId: f[3] === '-' ? undefined : f[3] };
          });
        } catch {
          continue;
        } finally {
          c.disconnect();
        }
      }
      throw new Error('no cluster node answers');
    },
    replicasInSync: async () => {
      for (let i = 0; i < ports.length; i++) {
        if (!alive(i)) continue;
        const c = client(ports[i]!);
        try {
          await c.connect();
          const info = await c.info('replication');
          if (info.includes('role:slave') && !info.includes('master_link_status:up')) return false;
        } catch {
          return false;
        } finally {
          c.disconnect();
        }
      }
      return true;
    },
    command: async (i, ...args) => {
      const c = client(ports[i]!);
      try {
        await c.connect();
        return await c.call(args[0]!, ...args.slice(1));
      } finally {
        c.disconnect();
      }
    },
    signal: (i, sig) => void (alive(i) && children[i]!.kill(sig)),
    kill: async (i) => {
      const ch = children[i];
      if (ch === undefined || !alive(i)) return;
      const exited = new Promise((r) => ch.once('exit', r));
      ch.kill('SIGKILL');
      await exited;
    },
    restart: async (i) => {
      children[i] = spawn(REDIS_SERVER, args(ports[i]!), { stdio: 'ignore' });
      await up(ports[i]!);
    },
    alive,
    dir,
    stop: () => {
      killAll();
      process.off('exit', killAll);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await waitFor('every replica in sync', () => cluster.replicasInSync(), 30_000, 100);
  return cluster;
}

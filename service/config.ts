/**
 * The reference service's configuration: a homeserver YAML whose top-level keys
 * are the engine's (`server_name`, `presence`, `rc_presence`, `modules`, …, see
 * `HomeserverConfigSchema`) plus one `service:` section for the HTTP side:
 * listen address, users and their access tokens, rooms to preload, federation
 * peers (URL and shared secret) and the admin token.
 *
 * The whole file is validated with one zod schema (the engine's schema extended
 * with the `service` section); problems become a `ConfigError` naming the path.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, HomeserverConfigSchema, configErrorFromZod, RoomIdSchema, ServerNameSchema, UserIdSchema, serverNameOf } from '../src/index.js';
import { MAX_DURATION_MS } from '../src/config.js';
import { parseRedisUrl } from '../src/redis-url.js';
import type { FederationTransportOptions, InboundLimits, RoomId, ServerName, UserId } from '../src/index.js';
import { SCRYPT_HASH_PATTERN, scryptParamsProblem, type PasswordCredential } from './password.js';
import { DashboardSectionSchema, type DashboardSettings } from './dashboard/config.js';

const PortSchema = z.number().int().min(0).max(65_535);

/** Milliseconds for a timer: Node's timers take at most 2^31−1 ms and fire after 1 ms when given more. */
const MillisSchema = z
  .number()
  .int('must be a whole number of milliseconds')
  .max(MAX_DURATION_MS, `must be at most ${MAX_DURATION_MS} ms (about 24.8 days, the longest timer Node supports)`);


/** `$scrypt$n=<N>,r=<r>,p=<p>$<salt>$<key>` (base64url salt and key), as printed by `npm run hash-password`. */
export const PasswordHashSchema = z
  .string()
  .regex(
    SCRYPT_HASH_PATTERN,
    'must be a $scrypt$n=<N>,r=<r>,p=<p>$<salt>$<key> string: create one with `npm run hash-password` (or use `password` for a plain-text password)',
  )
  .superRefine((hash, ctx) => {
    const problem = scryptParamsProblem(hash);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `unusable scrypt parameters: ${problem}` });
  });

export const ServiceUserSchema = z
  .strictObject({
    user_id: UserIdSchema,
    /** A static access token (never expires, cannot be logged out). */
    access_token: z.string().min(8, 'access tokens must be at least 8 characters').optional(),
    /** The device of the static token (default: `DEVICE_<index>`). */
    device_id: z.string().min(1).max(255).optional(),
    /** Password for `POST /login` (`m.login.password`), stored hashed. */
    password_hash: PasswordHashSchema.optional(),
    /** Plain-text password for `POST /login`; allowed for tests and demos, warned about at start-up. */
    password: z.string().min(1, 'the password must not be empty').optional(),
  })
  .refine((u) => !(u.password !== undefined && u.password_hash !== undefined), {
    error: 'give password_hash or password, not both',
    path: ['password'],
  })
  .refine((u) => u.access_token !== undefined || u.password_hash !== undefined || u.password !== undefined, {
    error: 'give the user an access_token, a password_hash (for /login) or both',
    path: ['access_token'],
  });

export const ServiceRoomSchema = z.strictObject({
  room_id: RoomIdSchema,
  /** Joined members (local or remote users) preloaded at start-up. */
  members: z.array(UserIdSchema).default([]),
});

export const ServicePeerSchema = z.strictObject({
  server_name: ServerNameSchema,
  /** Base URL of the peer, e.g. `http://127.0.0.1:8009`; transactions go to `{url}/_matrix/federation/v1/send/{txnId}`. */
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. http://127.0.0.1:8009' }),
  /** Secret shared with that peer (both sides configure the same value). */
  shared_secret: z.string().min(16, 'shared secrets must be at least 16 characters'),
});

/** `service.appservices`: how presence transactions to application services are sent (docs/appservices.md). */
const AppservicesSectionSchema = z.strictObject({
  /** Most m.presence events per transaction. */
  max_events_per_transaction: z.number().int().positive().max(10_000).default(100),
  /** Deadline of one transaction request. */
  request_timeout_ms: MillisSchema.positive().default(30_000),
  /** First retry delay after a failed transaction; doubles per consecutive failure. */
  initial_backoff_ms: MillisSchema.positive().default(1_000),
  /** Longest retry delay. */
  max_backoff_ms: MillisSchema.positive().default(300_000),
});

/**
 * `service.distributed`: this process is one of several service processes on one
 * Redis (`log: { kind: redis, url, partitions }`), docs/service.md "Distributed mode".
 */
export const DistributedSectionSchema = z.strictObject({
  /** A readable name for this process (its instance id adds a random suffix per start). */
  node_id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1–64 letters, digits, dots, dashes or underscores'),
  /** The base URL the other service processes reach this one at (writes for users this process owns are forwarded there). */
  advertise_url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL the other processes can reach, e.g. http://10.0.0.5:8008' }),
  /** Secret shared by every process of the deployment: it authenticates forwarded writes. */
  forward_secret: z.string().min(16, 'the forward secret must be at least 16 characters'),
  /** Writer lease time-to-live: a dead process's users move to a survivor within about this plus a renewal period. */
  lease_ttl_ms: MillisSchema.min(300, 'must be at least 300 ms').default(10_000),
  /** Lease renewal period (default a third of the TTL). */
  renew_interval_ms: MillisSchema.positive().optional(),
  /** How long a write may wait for its user's owner (failover included) before it is answered 503. */
  forward_timeout_ms: MillisSchema.positive().default(30_000),
  /** The Redis persistence settings check at start-up (docs/distributed.md). */
  redis_settings: z.enum(['warn', 'refuse', 'ignore']).default('warn'),
  /** Acknowledge a write only once this many replicas have it (Redis WAIT; not on Redis Cluster). 0: the primary alone. */
  wait_replicas: z.number().int().min(0).max(16).default(0),
});

export const ServiceSectionSchema = z.strictObject({
  listen: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: PortSchema.default(8008),
    })
    .default({ host: '127.0.0.1', port: 8008 }),
  /** Bearer token for `/_presence/admin/v1/...`; admin endpoints are off when absent. */
  admin_token: z.string().min(16, 'the admin token must be at least 16 characters').optional(),
  /** Largest accepted request body, in bytes (bigger bodies get 413). */
  max_body_bytes: z.number().int().positive().max(16 * 1024 * 1024).default(65_536),
  /** Deadline for a request's headers, and separately for its body, to arrive; later ones get 408. */
  read_timeout_ms: MillisSchema.min(100, 'must be at least 100 ms').default(30_000),
  /** Open client and federation connections at once; further connections are closed at once. */
  max_connections: z.number().int().positive().max(1_000_000).default(4_096),
  /** Upper bound for the `/sync` `timeout` parameter, in ms. */
  max_sync_timeout_ms: MillisSchema.nonnegative().default(60_000),
  /** Serve `/metrics` (Prometheus text format). */
  metrics: z.boolean().default(true),
  /** The live dashboard at `/_presence/dashboard` (docs/service.md). */
  dashboard: DashboardSectionSchema,
  /** `GET /_presence/admin/explain`: recipients of past deliveries kept in memory (0: say only who hears of the user now). */
  explain: z
    .strictObject({ record_deliveries: z.number().int().nonnegative().max(100_000_000).default(100_000) })
    .default({ record_deliveries: 100_000 }),
  users: z.array(ServiceUserSchema).default([]),
  login: z
    .strictObject({
      /**
       * Where access tokens issued by `POST /login` are kept across restarts
       * (relative to the config file). Without it they live in memory only.
       */
      sessions_file: z.string().min(1).optional(),
      /** Most sessions (logged-in devices) kept per user; logging in beyond it ends the oldest. */
      max_sessions_per_user: z.number().int().positive().default(100),
      /** `POST /login` attempts per account (Synapse's `rc_login.account` defaults); over it: 429. */
      rate_limit: z
        .strictObject({ per_second: z.number().positive(), burst_count: z.number().int().positive() })
        .default({ per_second: 0.17, burst_count: 3 }),
    })
    .default({ max_sessions_per_user: 100, rate_limit: { per_second: 0.17, burst_count: 3 } }),
  rooms: z.array(ServiceRoomSchema).default([]),
  appservices: AppservicesSectionSchema.default(AppservicesSectionSchema.parse({})),
  federation: z
    .strictObject({
      peers: z.array(ServicePeerSchema).default([]),
      /** Per-request deadline for outbound transactions, in ms. */
      request_timeout_ms: MillisSchema.positive().default(10_000),
      /** First retry delay after a failed transaction; grows ×2 per consecutive failure. */
      initial_backoff_ms: MillisSchema.positive().default(5_000),
      /** Longest retry delay. */
      max_backoff_ms: MillisSchema.positive().default(600_000),
      /** After a peer has been failing this long, its pending presence is dropped (presence is lossy). */
      drop_after_ms: MillisSchema.positive().default(3_600_000),
      /** Largest inbound transaction body, in bytes (bigger ones get 413 before they are read). */
      max_body_bytes: z.number().int().positive().max(16 * 1024 * 1024).default(1024 * 1024),
      /** Inbound transactions one peer may have in flight at once; more get 429 before their body is read. */
      max_in_flight_per_peer: z.number().int().positive().max(1_000).default(4),
      /** Presence items examined per inbound transaction; the rest are dropped and counted. */
      max_items_per_transaction: z.number().int().positive().max(1_000_000).default(5_000),
      /** Remote users held per origin server; presence of further new users from it is refused (typed error, metric). */
      max_remote_users_per_server: z.number().int().positive().max(100_000_000).default(100_000),
      /** Remote users held in total over every origin. */
      max_remote_users: z.number().int().positive().max(100_000_000).default(1_000_000),
    })
    .default({
      peers: [],
      request_timeout_ms: 10_000,
      initial_backoff_ms: 5_000,
      max_backoff_ms: 600_000,
      drop_after_ms: 3_600_000,
      max_body_bytes: 1024 * 1024,
      max_in_flight_per_peer: 4,
      max_items_per_transaction: 5_000,
      max_remote_users_per_server: 100_000,
      max_remote_users: 1_000_000,
    }),
  /** Several service processes on one Redis (docs/service.md, "Distributed mode"). */
  distributed: DistributedSectionSchema.optional(),
});

/** The whole service config file: the engine's homeserver keys plus `service:`. */
export const ServiceConfigFileSchema = HomeserverConfigSchema.extend({
  /** Application service registration files (Synapse's key), relative to the config file. */
  app_service_config_files: z.array(z.string().min(1)).default([]),
  service: ServiceSectionSchema.default(ServiceSectionSchema.parse({})),
});

/** `app_service_config_files` and `service.appservices`, validated. */
export interface AppserviceSettings {
  readonly configFiles: readonly string[];
  readonly maxEventsPerTransaction: number;
  readonly requestTimeoutMs: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

/** Who a request acts as: a user and the device its access token belongs to. */
export interface ServiceUser {
  readonly userId: UserId;
  readonly deviceId: string;
}

/** A configured local user that can log in with a password. */
export interface LoginAccount {
  readonly userId: UserId;
  readonly password: PasswordCredential;
}

export interface ServicePeer {
  readonly serverName: ServerName;
  readonly url: string;
  readonly sharedSecret: string;
}

/** `service.distributed`, validated (the Redis URL and partitions are the engine's `log`). */
export interface DistributedSettings {
  readonly nodeId: string;
  readonly advertiseUrl: string;
  readonly forwardSecret: string;
  readonly leaseTtlMs: number;
  readonly renewIntervalMs: number | undefined;
  readonly forwardTimeoutMs: number;
  readonly redisSettings: 'warn' | 'refuse' | 'ignore';
  readonly waitReplicas: number;
}

/** The validated service settings (the engine's part is parsed by the engine). */
export interface ServiceSettings {
  readonly serverName: ServerName;
  readonly host: string;
  readonly port: number;
  readonly adminToken: string | undefined;
  readonly maxBodyBytes: number;
  readonly maxSyncTimeoutMs: number;
  /** `service.read_timeout_ms`: deadline for headers and for a body. */
  readonly readTimeoutMs: number;
  readonly maxConnections: number;
  readonly metrics: boolean;
  readonly dashboard: DashboardSettings;
  /** `service.explain.record_deliveries`. */
  readonly recordDeliveries: number;
  /** static access token (`service.users[].access_token`) → user */
  readonly tokens: ReadonlyMap<string, ServiceUser>;
  /** users with a password, by user id */
  readonly accounts: ReadonlyMap<UserId, LoginAccount>;
  /** number of configured users */
  readonly userCount: number;
  /** `service.login.sessions_file` as written (relative paths resolve against the config's directory) */
  readonly sessionsFile: string | undefined;
  readonly maxSessionsPerUser: number;
  readonly loginRateLimit: { readonly perSecond: number; readonly burstCount: number };
  readonly rooms: readonly { readonly roomId: RoomId; readonly members: readonly UserId[] }[];
  readonly peers: ReadonlyMap<ServerName, ServicePeer>;
  readonly federationRequestTimeoutMs: number;
  /** Options for `engine.attachFederationTransport`. */
  readonly federationTransport: FederationTransportOptions;
  readonly appservices: AppserviceSettings;
  /** Limits of the inbound federation endpoint. */
  readonly federationInbound: {
    readonly maxBodyBytes: number;
    readonly maxInFlightPerPeer: number;
    readonly limits: Required<InboundLimits>;
  };
  /** Set when this process is one of several on one Redis. */
  readonly distributed: DistributedSettings | undefined;
}

export interface LoadedServiceConfig {
  /** The raw config object (for the engine: `parseConfig` ignores the `service` key). */
  readonly raw: Record<string, unknown>;
  readonly settings: ServiceSettings;
}

/** Validate a parsed config object. @throws ConfigError */
export function parseServiceConfig(raw: unknown): LoadedServiceConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError('', 'the config must be a mapping with at least server_name');
  }
  const r = ServiceConfigFileSchema.safeParse(raw);
  if (!r.success) throw configErrorFromZod(r.error, 'see docs/service.md');
  const c = r.data;
  const s = c.service;
  const serverName = c.server_name;
  const tokens = new Map<string, ServiceUser>();
  const accounts = new Map<UserId, LoginAccount>();
  s.users.forEach((u, i) => {
    const path = `service.users[${i}]`;
    if (serverNameOf(u.user_id) !== serverName) throw new ConfigError(`${path}.user_id`, `${u.user_id} is not a user of ${serverName}`);
    if (u.access_token !== undefined) {
      if (tokens.has(u.access_token)) throw new ConfigError(`${path}.access_token`, 'access tokens must be unique');
      if (s.admin_token !== undefined && u.access_token === s.admin_token) throw new ConfigError(`${path}.access_token`, 'must differ from service.admin_token');
      tokens.set(u.access_token, { userId: u.user_id, deviceId: u.device_id ?? `DEVICE_${i}` });
    }
    // A user may be listed more than once (one static token per device), with a password on one entry.
    if ((u.password_hash ?? u.password) !== undefined && accounts.has(u.user_id)) {
      throw new ConfigError(`${path}.password`, `${u.user_id} already has a password in an earlier entry`);
    }
    if (u.password_hash !== undefined) accounts.set(u.user_id, { userId: u.user_id, password: { kind: 'scrypt', hash: u.password_hash } });
    else if (u.password !== undefined) accounts.set(u.user_id, { userId: u.user_id, password: { kind: 'plain', password: u.password } });
  });
  if (s.federation.max_backoff_ms < s.federation.initial_backoff_ms) {
    throw new ConfigError('service.federation.max_backoff_ms', 'must be at least service.federation.initial_backoff_ms');
  }
  if (s.appservices.max_backoff_ms < s.appservices.initial_backoff_ms) {
    throw new ConfigError('service.appservices.max_backoff_ms', 'must be at least service.appservices.initial_backoff_ms');
  }
  const distributed = distributedSettings(c.log, s, c.app_service_config_files);
  const peers = new Map<ServerName, ServicePeer>();
  s.federation.peers.forEach((p, i) => {
    const path = `service.federation.peers[${i}]`;
    if (p.server_name === serverName) throw new ConfigError(`${path}.server_name`, 'a server cannot be its own peer');
    if (peers.has(p.server_name)) throw new ConfigError(`${path}.server_name`, `${p.server_name} is listed twice`);
    peers.set(p.server_name, { serverName: p.server_name, url: p.url.replace(/\/+$/, ''), sharedSecret: p.shared_secret });
  });
  return {
    raw: raw as Record<string, unknown>,
    settings: {
      serverName,
      host: s.listen.host,
      port: s.listen.port,
      adminToken: s.admin_token,
      maxBodyBytes: s.max_body_bytes,
      maxSyncTimeoutMs: s.max_sync_timeout_ms,
      readTimeoutMs: s.read_timeout_ms,
      maxConnections: s.max_connections,
      metrics: s.metrics,
      dashboard: s.dashboard,
      recordDeliveries: s.explain.record_deliveries,
      tokens,
      accounts,
      userCount: new Set(s.users.map((u) => u.user_id)).size,
      sessionsFile: s.login.sessions_file,
      maxSessionsPerUser: s.login.max_sessions_per_user,
      loginRateLimit: { perSecond: s.login.rate_limit.per_second, burstCount: s.login.rate_limit.burst_count },
      rooms: s.rooms.map((room) => ({ roomId: room.room_id, members: room.members })),
      peers,
      federationRequestTimeoutMs: s.federation.request_timeout_ms,
      federationTransport: {
        initialBackoffMs: s.federation.initial_backoff_ms,
        maxBackoffMs: s.federation.max_backoff_ms,
        dropAfterMs: s.federation.drop_after_ms,
        // The engine's own deadline sits just above the HTTP request timeout.
        sendTimeoutMs: s.federation.request_timeout_ms + 1_000,
      },
      appservices: {
        configFiles: c.app_service_config_files,
        maxEventsPerTransaction: s.appservices.max_events_per_transaction,
        requestTimeoutMs: s.appservices.request_timeout_ms,
        initialBackoffMs: s.appservices.initial_backoff_ms,
        maxBackoffMs: s.appservices.max_backoff_ms,
      },
      federationInbound: {
        maxBodyBytes: s.federation.max_body_bytes,
        maxInFlightPerPeer: s.federation.max_in_flight_per_peer,
        limits: {
          maxItemsPerTransaction: s.federation.max_items_per_transaction,
          itemsPerSlice: 250,
          maxRemoteUsersPerServer: s.federation.max_remote_users_per_server,
          maxRemoteUsers: s.federation.max_remote_users,
        },
      },
      distributed,
    },
  };
}

type ServiceSection = z.infer<typeof ServiceSectionSchema>;

/** `service.distributed` goes with `log.kind: redis` and without the parts that are not distributed yet. @throws ConfigError */
function distributedSettings(log: { kind: string; url?: string }, s: ServiceSection, appserviceFiles: readonly string[]): DistributedSettings | undefined {
  const d = s.distributed;
  if (d === undefined) {
    if (log.kind === 'redis') throw new ConfigError('service.distributed', 'a redis log runs the service as one of several processes: add service.distributed { node_id, advertise_url, forward_secret } (docs/service.md, "Distributed mode")');
    return undefined;
  }
  if (log.kind !== 'redis') throw new ConfigError('log.kind', 'service.distributed needs log: { kind: redis, url, partitions } (the shared Redis)');
  // Not distributed yet: each would run once per process (duplicate transactions) or only on one process.
  if (s.federation.peers.length > 0) throw new ConfigError('service.federation.peers', 'federation is not supported in distributed mode yet (docs/service.md, "Distributed mode"); remove the peers or run one process');
  if (appserviceFiles.length > 0) throw new ConfigError('app_service_config_files', 'application services are not supported in distributed mode yet (every process would send each transaction); run one process');
  if (s.login.sessions_file !== undefined) throw new ConfigError('service.login.sessions_file', 'in distributed mode sessions live in Redis, shared by every process; remove sessions_file');
  if (d.renew_interval_ms !== undefined && d.renew_interval_ms >= d.lease_ttl_ms) throw new ConfigError('service.distributed.renew_interval_ms', 'must be less than lease_ttl_ms');
  if (d.wait_replicas > 0 && log.url !== undefined && parseRedisUrl(log.url).kind === 'cluster') {
    throw new ConfigError('service.distributed.wait_replicas', 'is not available on Redis Cluster (WAIT is per shard); set it to 0 and use min-replicas-to-write on the shards (docs/distributed.md, "Deployment recipe")');
  }
  return {
    nodeId: d.node_id,
    advertiseUrl: d.advertise_url.replace(/\/+$/, ''),
    forwardSecret: d.forward_secret,
    leaseTtlMs: d.lease_ttl_ms,
    renewIntervalMs: d.renew_interval_ms,
    forwardTimeoutMs: d.forward_timeout_ms,
    redisSettings: d.redis_settings,
    waitReplicas: d.wait_replicas,
  };
}

/** Parse YAML text. @throws ConfigError */
export function parseServiceConfigYaml(text: string): LoadedServiceConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError('', `the YAML could not be parsed: ${(error as Error).message}`, { cause: error });
  }
  return parseServiceConfig(raw);
}

/** Read and parse a YAML config file. @throws ConfigError */
export async function loadServiceConfigFile(path: string): Promise<LoadedServiceConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError('', `cannot read config file ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parseServiceConfigYaml(text);
}

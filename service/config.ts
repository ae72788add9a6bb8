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
import type { FederationTransportOptions, RoomId, ServerName, UserId } from '../src/index.js';
import { DashboardSectionSchema, type DashboardSettings } from './dashboard/config.js';

const PortSchema = z.number().int().min(0).max(65_535);

export const ServiceUserSchema = z.strictObject({
  user_id: UserIdSchema,
  access_token: z.string().min(8, 'access tokens must be at least 8 characters'),
  /** The device this token belongs to (default: `TOKEN_<n>`-style id derived from the user). */
  device_id: z.string().min(1).max(255).optional(),
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
  /** Upper bound for the `/sync` `timeout` parameter, in ms. */
  max_sync_timeout_ms: z.number().int().nonnegative().default(60_000),
  /** Serve `/metrics` (Prometheus text format). */
  metrics: z.boolean().default(true),
  /** The live dashboard at `/_presence/dashboard` (docs/service.md). */
  dashboard: DashboardSectionSchema,
  users: z.array(ServiceUserSchema).default([]),
  rooms: z.array(ServiceRoomSchema).default([]),
  federation: z
    .strictObject({
      peers: z.array(ServicePeerSchema).default([]),
      /** Per-request deadline for outbound transactions, in ms. */
      request_timeout_ms: z.number().int().positive().default(10_000),
      /** First retry delay after a failed transaction; grows ×2 per consecutive failure. */
      initial_backoff_ms: z.number().int().positive().default(5_000),
      /** Longest retry delay. */
      max_backoff_ms: z.number().int().positive().default(600_000),
      /** After a peer has been failing this long, its pending presence is dropped (presence is lossy). */
      drop_after_ms: z.number().int().positive().default(3_600_000),
    })
    .default({ peers: [], request_timeout_ms: 10_000, initial_backoff_ms: 5_000, max_backoff_ms: 600_000, drop_after_ms: 3_600_000 }),
});
export type ServiceSection = z.infer<typeof ServiceSectionSchema>;

/** The whole service config file: the engine's homeserver keys plus `service:`. */
export const ServiceConfigFileSchema = HomeserverConfigSchema.extend({
  service: ServiceSectionSchema.default(ServiceSectionSchema.parse({})),
});

export interface ServiceUser {
  readonly userId: UserId;
  readonly deviceId: string;
}

export interface ServicePeer {
  readonly serverName: ServerName;
  readonly url: string;
  readonly sharedSecret: string;
}

/** The validated service settings (the engine's part is parsed by the engine). */
export interface ServiceSettings {
  readonly serverName: ServerName;
  readonly host: string;
  readonly port: number;
  readonly adminToken: string | undefined;
  readonly maxBodyBytes: number;
  readonly maxSyncTimeoutMs: number;
  readonly metrics: boolean;
  readonly dashboard: DashboardSettings;
  /** access token → user */
  readonly tokens: ReadonlyMap<string, ServiceUser>;
  readonly rooms: readonly { readonly roomId: RoomId; readonly members: readonly UserId[] }[];
  readonly peers: ReadonlyMap<ServerName, ServicePeer>;
  readonly federationRequestTimeoutMs: number;
  /** Options for `engine.attachFederationTransport`. */
  readonly federationTransport: FederationTransportOptions;
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
  const seenUsers = new Set<string>();
  s.users.forEach((u, i) => {
    const path = `service.users[${i}]`;
    if (serverNameOf(u.user_id) !== serverName) throw new ConfigError(`${path}.user_id`, `${u.user_id} is not a user of ${serverName}`);
    if (tokens.has(u.access_token)) throw new ConfigError(`${path}.access_token`, 'access tokens must be unique');
    if (s.admin_token !== undefined && u.access_token === s.admin_token) throw new ConfigError(`${path}.access_token`, 'must differ from service.admin_token');
    seenUsers.add(u.user_id);
    tokens.set(u.access_token, { userId: u.user_id, deviceId: u.device_id ?? `DEVICE_${i}` });
  });
  if (s.federation.max_backoff_ms < s.federation.initial_backoff_ms) {
    throw new ConfigError('service.federation.max_backoff_ms', 'must be at least service.federation.initial_backoff_ms');
  }
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
      metrics: s.metrics,
      dashboard: s.dashboard,
      tokens,
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
    },
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

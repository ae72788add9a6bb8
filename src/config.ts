/**
 * Configuration: the `presence:` section of a Synapse-style homeserver YAML plus
 * the top-level keys presence depends on. Parsed once at start-up with zod;
 * anything wrong is a {@link ConfigError} naming the path and the fix.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { redisUrlProblem } from './redis-url.js';
import { RoomIdSchema, ServerNameSchema, type RoomId, type ServerName } from './domain/ids.js';
import type { DampingRule } from './domain/damping.js';
import type { LargeRoomRule } from './domain/large-room.js';
import { DEFAULT_TIMERS, type PresenceTimers, type RuleConfig } from './domain/presence.js';

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

/**
 * The longest duration a config key may hold: Node's timers take at most
 * 2^31−1 ms (about 24.8 days) and fire after 1 ms when given more.
 */
export const MAX_DURATION_MS = 2_147_483_647;

const shown = (s: string): string => JSON.stringify(s.length > 40 ? `${s.slice(0, 37)}...` : s);
const LIMIT = `durations must be at most ${MAX_DURATION_MS} ms (about 24.8 days, the longest timer Node supports)`;

/** A Synapse duration: milliseconds as a number, or a string like `500ms`, `30s`, `5m`, `1h`, `7d`; at most {@link MAX_DURATION_MS}. */
export const DurationSchema = z
  .union([z.number(), z.string()], { error: 'must be a duration: a number of milliseconds or a string like 30s, 5m, 1h' })
  .transform((v, ctx) => {
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) ctx.addIssue({ code: 'custom', message: `${v} must be a whole number of milliseconds` });
      else if (v < 0) ctx.addIssue({ code: 'custom', message: `${v} must not be negative` });
      else if (v > MAX_DURATION_MS) ctx.addIssue({ code: 'custom', message: `${v} ms is too long; ${LIMIT}` });
      return v;
    }
    const m = /^(\d+)(ms|s|m|h|d|w|y)?$/.exec(v.trim());
    if (m === null) {
      ctx.addIssue({ code: 'custom', message: `${shown(v)} is not a duration; write e.g. 30s, 5m, 1h or a number of ms` });
      return z.NEVER;
    }
    const ms = Number(m[1]) * (UNITS[m[2] ?? 'ms'] ?? 1);
    if (!Number.isFinite(ms) || ms > MAX_DURATION_MS) {
      ctx.addIssue({ code: 'custom', message: `${shown(v)} is ${Number.isFinite(ms) ? `${ms} ms` : 'too large to represent'}; ${LIMIT}` });
      return z.NEVER;
    }
    return ms;
  });

/**
 * Largest `presence.change_index_size`: the index preallocates 16 bytes per
 * entry, so this is 160 MB; beyond it start-up would fail to allocate.
 */
export const MAX_CHANGE_INDEX_SIZE = 10_000_000;

export const ModuleEntrySchema = z.strictObject({
  module: z.string({ error: 'must be a module specifier string, e.g. ./routers/example.js#ExampleRouter' }).min(1),
  config: z.record(z.string(), z.unknown()).nullish(),
});
export type ModuleEntry = z.infer<typeof ModuleEntrySchema>;

const PresenceSectionSchema = z.strictObject({
  enabled: z.union([z.boolean(), z.literal('untracked')]).optional(),
  include_offline_users_on_sync: z.boolean().default(false),
  last_active_granularity: DurationSchema.default(DEFAULT_TIMERS.lastActiveGranularity),
  sync_online_timeout: DurationSchema.default(DEFAULT_TIMERS.syncOnlineTimeout),
  idle_timeout: DurationSchema.default(DEFAULT_TIMERS.idleTimeout),
  busy_timeout: DurationSchema.default(DEFAULT_TIMERS.busyTimeout),
  federation_timeout: DurationSchema.default(DEFAULT_TIMERS.federationTimeout),
  federation_ping_interval: DurationSchema.default(DEFAULT_TIMERS.federationPingInterval),
  /** Period of the shared timer wheel (Synapse: a 5 s loop). */
  timer_period: DurationSchema.default(5_000),
  busy_enabled: z.boolean().optional(),
  /** Wire value of busy: the unstable MSC3026 string (default) or the stable `busy`. */
  busy_wire_value: z.enum(['org.matrix.msc3026.busy', 'busy']).default('org.matrix.msc3026.busy'),
  sync_counts_as_activity: z.boolean().default(true),
  /** Deadline for each presence router callback. */
  router_timeout: DurationSchema.default(1_000),
  /** How many recent changes incremental sync can answer from memory before falling back to a full answer. */
  change_index_size: z
    .number()
    .int('must be a whole number of entries')
    .min(16, 'must be at least 16')
    .max(MAX_CHANGE_INDEX_SIZE, `must be at most ${MAX_CHANGE_INDEX_SIZE} (the index preallocates 16 bytes per entry)`)
    .default(100_000),
  /**
   * When the engine commits (log append, fan-out, sync-stream emission,
   * federation): after each input (`per_input`), or once at the end of the
   * event-loop tick for every input of the tick (`per_tick`).
   */
  turns: z.enum(['per_input', 'per_tick']).default('per_input'),
  presence_router: ModuleEntrySchema.optional(),
  routing_modules: z.array(ModuleEntrySchema).default([]),
  /** How long an answer of a module's `getVisibility` callback is reused (docs/policies.md). */
  visibility_cache_ttl: DurationSchema.default(60_000),
  /** Large-room mode (docs/policies.md); absent = off. */
  large_rooms: z
    .strictObject({
      mode: z.enum(['summary', 'shared_rooms_only']).default('summary'),
      member_threshold: z.number().int('must be a whole number').min(2, 'must be at least 2').default(1_000),
      interval: DurationSchema.default(1_000),
      /** Per room: true = always summarised, false = never (overrides the threshold). */
      rooms: z.record(RoomIdSchema, z.boolean()).default({}),
    })
    .optional(),
  /** Flap damping (docs/policies.md); absent = off. */
  damping: z
    .strictObject({
      hold_down: DurationSchema.default(10_000),
      max_transitions: z.number().int('must be a whole number').min(1, 'must be at least 1').default(6),
      window: DurationSchema.default(60_000),
    })
    .optional(),
});

const RateSchema = z.strictObject({
  per_second: z.number().positive('must be > 0'),
  burst_count: z.number().int().positive('must be a positive integer'),
});

/** Default of `log.retain` for the in-memory log: entries kept readable (about 0.5 KB each). */
export const DEFAULT_MEMORY_LOG_RETAIN = 10_000;

/** A valid `retain`: a whole number of entries ≥ 0, or `Infinity` (keep every entry). */
export function isRetainCount(value: unknown): value is number {
  return typeof value === 'number' && (value === Infinity || (Number.isSafeInteger(value) && value >= 0));
}

export const LogConfigSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('memory'),
    /** Newest entries the engine's in-memory log keeps readable; older ones are dropped (bounded memory). `.inf` (YAML) keeps every entry. */
    retain: z
      .custom<number>(isRetainCount, 'must be a whole number of entries ≥ 0 (or .inf to keep every entry)')
      .default(DEFAULT_MEMORY_LOG_RETAIN),
  }),
  z.strictObject({
    kind: z.literal('file'),
    path: z.string().min(1).max(4096).refine((p) => !p.includes('\0'), 'must not contain a NUL character'),
    fsync: z.enum(['always', 'batch', 'never']).default('batch'),
    snapshot_every: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).default(100_000),
    /** Damage other than a torn tail found on open: keep every intact record and start (`quarantine`), or refuse to start. */
    on_corruption: z.enum(['quarantine', 'refuse']).default('quarantine'),
  }),
  z.strictObject({
    kind: z.literal('redis'),
    /** One Redis (`redis://`), a Sentinel-managed primary (`redis-sentinel://…/<name>`) or a Cluster (`redis-cluster://…`): src/redis-url.ts. */
    url: z.string().min(1).superRefine((url, ctx) => {
      const problem = redisUrlProblem(url);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    }),
    partitions: z.number().int().positive().max(1024).default(16),
    stream_prefix: z.string().min(1).default('presence'),
  }),
]);
export type LogConfig = z.infer<typeof LogConfigSchema>;

/** The top-level keys presence reads. Other keys of a homeserver.yaml are ignored (reported in `ignoredKeys`). */
export const HomeserverConfigSchema = z.object({
  server_name: ServerNameSchema,
  use_presence: z.boolean().optional(),
  presence: PresenceSectionSchema.default(PresenceSectionSchema.parse({})),
  exclude_rooms_from_presence: z.array(RoomIdSchema).default([]),
  rc_presence: z.strictObject({ per_user: RateSchema.default({ per_second: 0.1, burst_count: 1 }) }).default({
    per_user: { per_second: 0.1, burst_count: 1 },
  }),
  experimental_features: z.looseObject({ msc3026_enabled: z.boolean().optional() }).default({}),
  modules: z.array(ModuleEntrySchema).default([]),
  log: LogConfigSchema.default({ kind: 'memory', retain: DEFAULT_MEMORY_LOG_RETAIN }),
});
export type HomeserverConfigInput = z.input<typeof HomeserverConfigSchema>;

/** The validated, normalised engine configuration. */
export interface PresenceConfig {
  readonly serverName: ServerName;
  /** `true`: tracked; `false`: presence off; `'untracked'`: only modules set presence. */
  readonly enabled: boolean | 'untracked';
  readonly includeOfflineUsersOnSync: boolean;
  readonly timers: PresenceTimers;
  readonly timerPeriod: number;
  readonly busyEnabled: boolean;
  readonly busyWireValue: 'org.matrix.msc3026.busy' | 'busy';
  readonly syncCountsAsActivity: boolean;
  readonly routerTimeout: number;
  /** `presence.visibility_cache_ttl`: reuse of `getVisibility` answers (ms). */
  readonly visibilityCacheTtl: number;
  /** `presence.large_rooms` (docs/policies.md), undefined when off. */
  readonly largeRooms: LargeRoomRule | undefined;
  /** `presence.damping` (docs/policies.md), undefined when off. */
  readonly damping: DampingRule | undefined;
  readonly changeIndexSize: number;
  /** `presence.turns`: commit after each input, or once per event-loop tick (see `PresenceEngineOptions.endOfTick`). */
  readonly turns: 'per_input' | 'per_tick';
  readonly excludeRoomsFromPresence: ReadonlySet<RoomId>;
  readonly rateLimit: { readonly perSecond: number; readonly burstCount: number };
  readonly presenceRouter: ModuleEntry | undefined;
  readonly routingModules: readonly ModuleEntry[];
  readonly modules: readonly ModuleEntry[];
  readonly log: LogConfig;
  /** Top-level keys that belong to other homeserver subsystems and were ignored. */
  readonly ignoredKeys: readonly string[];
}

const KNOWN_TOP_LEVEL = new Set(Object.keys(HomeserverConfigSchema.shape));

function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

/**
 * The {@link ConfigError} for a failed zod parse of a config: the first issue's
 * dotted path and message; unknown keys are named with a pointer to `docs`.
 */
export function configErrorFromZod(error: z.ZodError, docs: string): ConfigError {
  const issue = error.issues[0];
  let message = issue?.message ?? 'invalid';
  if (issue?.code === 'unrecognized_keys') {
    message = `unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; ${docs}`;
  }
  return new ConfigError(issue ? issuePath(issue.path) : '', message);
}

/**
 * Validate a homeserver config object (already parsed from YAML/JSON).
 * @throws ConfigError naming the first offending path.
 */
export function parseConfig(raw: unknown): PresenceConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError('', 'the config must be a mapping with at least server_name');
  }
  const r = HomeserverConfigSchema.safeParse(raw);
  if (!r.success) throw configErrorFromZod(r.error, 'check the spelling against docs/configuration.md');
  const c = r.data;
  const p = c.presence;
  if (p.last_active_granularity <= 0) throw new ConfigError('presence.last_active_granularity', 'must be greater than 0');
  if (p.sync_online_timeout <= 0) throw new ConfigError('presence.sync_online_timeout', 'must be greater than 0');
  if (p.idle_timeout <= p.last_active_granularity) {
    throw new ConfigError('presence.idle_timeout', 'must be greater than presence.last_active_granularity');
  }
  if (p.busy_timeout <= 0) throw new ConfigError('presence.busy_timeout', 'must be greater than 0');
  if (p.federation_timeout <= 0) throw new ConfigError('presence.federation_timeout', 'must be greater than 0');
  if (p.federation_ping_interval <= 0 || p.federation_ping_interval >= p.federation_timeout) {
    throw new ConfigError('presence.federation_ping_interval', 'must be greater than 0 and less than presence.federation_timeout');
  }
  if (p.timer_period <= 0) throw new ConfigError('presence.timer_period', 'must be greater than 0');
  if (p.router_timeout <= 0) throw new ConfigError('presence.router_timeout', 'must be greater than 0');
  if (p.large_rooms !== undefined && p.large_rooms.interval <= 0) throw new ConfigError('presence.large_rooms.interval', 'must be greater than 0');
  if (p.damping !== undefined && p.damping.window <= 0) throw new ConfigError('presence.damping.window', 'must be greater than 0');
  const enabled = p.enabled ?? c.use_presence ?? true;
  return {
    serverName: c.server_name,
    enabled,
    includeOfflineUsersOnSync: p.include_offline_users_on_sync,
    timers: {
      lastActiveGranularity: p.last_active_granularity,
      syncOnlineTimeout: p.sync_online_timeout,
      idleTimeout: p.idle_timeout,
      busyTimeout: p.busy_timeout,
      federationTimeout: p.federation_timeout,
      federationPingInterval: p.federation_ping_interval,
    },
    timerPeriod: p.timer_period,
    busyEnabled: p.busy_enabled ?? c.experimental_features.msc3026_enabled ?? false,
    busyWireValue: p.busy_wire_value,
    syncCountsAsActivity: p.sync_counts_as_activity,
    routerTimeout: p.router_timeout,
    visibilityCacheTtl: p.visibility_cache_ttl,
    largeRooms:
      p.large_rooms === undefined
        ? undefined
        : { mode: p.large_rooms.mode, memberThreshold: p.large_rooms.member_threshold, intervalMs: p.large_rooms.interval, rooms: new Map(Object.entries(p.large_rooms.rooms) as [RoomId, boolean][]) },
    damping: p.damping === undefined ? undefined : { holdDownMs: p.damping.hold_down, maxTransitions: p.damping.max_transitions, windowMs: p.damping.window },
    changeIndexSize: p.change_index_size,
    turns: p.turns,
    excludeRoomsFromPresence: new Set(c.exclude_rooms_from_presence),
    rateLimit: { perSecond: c.rc_presence.per_user.per_second, burstCount: c.rc_presence.per_user.burst_count },
    presenceRouter: p.presence_router,
    routingModules: p.routing_modules,
    modules: c.modules,
    log: c.log,
    ignoredKeys: Object.keys(raw).filter((k) => !KNOWN_TOP_LEVEL.has(k)),
  };
}

/** Parse YAML text (a homeserver.yaml) and validate it with {@link parseConfig}. */
export function parseConfigYaml(text: string): PresenceConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError('', `the YAML could not be parsed: ${(error as Error).message}`, { cause: error });
  }
  return parseConfig(raw);
}

/** A config for tests and embedding: `server_name` plus any overrides. */
export function presenceConfig(serverName: string, overrides: Record<string, unknown> = {}): PresenceConfig {
  return parseConfig({ server_name: serverName, ...overrides });
}

/** The rule config (timers, sync-as-activity) an engine built from `config` runs its rules with. */
export function ruleConfig(config: PresenceConfig): RuleConfig {
  return { timers: config.timers, syncCountsAsActivity: config.syncCountsAsActivity };
}

/** `config` itself when already parsed (`parseConfig`), else parsed now. */
export function toPresenceConfig(config: PresenceConfig | HomeserverConfigInput): PresenceConfig {
  const parsed = typeof config === 'object' && config !== null && typeof (config as PresenceConfig).serverName === 'string' && (config as PresenceConfig).timers !== undefined;
  return parsed ? (config as PresenceConfig) : parseConfig(config);
}

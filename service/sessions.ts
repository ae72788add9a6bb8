/**
 * Sessions: access tokens issued by `POST /login`, one per logged-in device.
 *
 * Tokens are random (32 bytes, base64url, prefixed `pe_`) and stored only as
 * their SHA-256, so the sessions file does not hold usable credentials. With
 * `service.login.sessions_file` every change is written to the file (a
 * temporary file renamed over it) before the request is answered, so tokens
 * survive restarts; without it they live in memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigError, UserIdSchema, type Logger, type UserId } from '../src/index.js';
import type { ServiceUser } from './config.js';

const SessionSchema = z.strictObject({
  token_sha256: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a base64url SHA-256'),
  user_id: UserIdSchema,
  device_id: z.string().min(1).max(255),
  created_at: z.number().int().nonnegative(),
});
const SessionsFileSchema = z.strictObject({ version: z.literal(1), sessions: z.array(SessionSchema) });
type SessionJson = z.infer<typeof SessionSchema>;

export interface Session extends ServiceUser {
  readonly createdAt: number;
}

/**
 * Where sessions live: this process (memory, optionally a file: {@link SessionStore})
 * or Redis, shared by every process of a distributed deployment
 * (distributed/redis-sessions.ts). `lookup` is synchronous; a shared store
 * refreshes the token's entry in `prepare`, which the server awaits before
 * dispatching the request.
 */
export interface SessionBackend {
  lookup(token: string): Session | undefined;
  /** Bring what `lookup(token)` answers up to date (no-op for a local store). */
  prepare?(token: string): Promise<void>;
  issue(userId: UserId, deviceId: string, now: number): Promise<string>;
  revoke(token: string): Promise<boolean>;
  revokeAll(userId: UserId): Promise<number>;
}

export const digest = (token: string): string => createHash('sha256').update(token).digest('base64url');

/** A device id for a login that did not name one: 10 capital letters, like Synapse's. */
export function newDeviceId(): string {
  return Array.from(randomBytes(10), (b) => String.fromCharCode(65 + (b % 26))).join('');
}

export class SessionStore implements SessionBackend {
  /** token digest → session, in creation order */
  private readonly byDigest = new Map<string, Session>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string | undefined,
    private readonly maxPerUser: number,
    private readonly logger: Logger,
  ) {}

  /** Open the store, reading `file` when it exists. @throws ConfigError when the file is unreadable or malformed. */
  static async open(options: { file: string | undefined; maxPerUser: number; logger: Logger }): Promise<SessionStore> {
    const store = new SessionStore(options.file, options.maxPerUser, options.logger);
    if (options.file === undefined) return store;
    let text: string;
    try {
      text = await readFile(options.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return store;
      throw new ConfigError('service.login.sessions_file', `cannot read ${options.file}: ${(error as Error).message}`, { cause: error });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ConfigError('service.login.sessions_file', `${options.file} is not JSON (move it away to start with no sessions)`, { cause: error });
    }
    const r = SessionsFileSchema.safeParse(parsed);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new ConfigError(
        'service.login.sessions_file',
        `${options.file} is malformed at ${issue?.path.join('.') ?? ''}: ${issue?.message ?? ''} (move it away to start with no sessions)`,
      );
    }
    for (const s of r.data.sessions) store.byDigest.set(s.token_sha256, { userId: s.user_id, deviceId: s.device_id, createdAt: s.created_at });
    return store;
  }

  get size(): number {
    return this.byDigest.size;
  }

  lookup(token: string): Session | undefined {
    return this.byDigest.get(digest(token));
  }

  /** Issue a token for a new session of `userId` on `deviceId`; resolves once it is stored. */
  async issue(userId: UserId, deviceId: string, now: number): Promise<string> {
    const token = `pe_${randomBytes(32).toString('base64url')}`;
    this.byDigest.set(digest(token), { userId, deviceId, createdAt: now });
    // Bound each user's sessions: the oldest ones end first.
    const mine = [...this.byDigest].filter(([, s]) => s.userId === userId);
    for (const [d] of mine.slice(0, Math.max(0, mine.length - this.maxPerUser))) this.byDigest.delete(d);
    await this.persist();
    return token;
  }

  /** End the session of `token`; false when it is not a session token. */
  async revoke(token: string): Promise<boolean> {
    if (!this.byDigest.delete(digest(token))) return false;
    await this.persist();
    return true;
  }

  /** End every session of `userId`; returns how many ended. */
  async revokeAll(userId: UserId): Promise<number> {
    let n = 0;
    for (const [d, s] of this.byDigest) {
      if (s.userId !== userId) continue;
      this.byDigest.delete(d);
      n++;
    }
    if (n > 0) await this.persist();
    return n;
  }

  /** Write the file (writes are serialised; each holds the state at its call). A failed write is logged and rethrown. */
  private persist(): Promise<void> {
    const file = this.file;
    if (file === undefined) return Promise.resolve();
    const sessions: SessionJson[] = [...this.byDigest].map(([d, s]) => ({ token_sha256: d, user_id: s.userId, device_id: s.deviceId, created_at: s.createdAt }));
    const text = `${JSON.stringify({ version: 1, sessions })}\n`;
    const write = async (): Promise<void> => {
      const tmp = `${file}.tmp-${process.pid}`;
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, file);
    };
    const next = this.writing.then(write, write);
    this.writing = next.catch(() => {});
    return next.catch((error: unknown) => {
      this.logger.error(`sessions: could not write ${file}`, { error: error instanceof Error ? error.message : String(error) });
      throw error;
    });
  }
}

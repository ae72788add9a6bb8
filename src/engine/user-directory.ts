/**
 * The dense user directory: every user the engine has met gets a small
 * integer index, and per-user data lives in arrays by that index (columns).
 * The directory also holds each user's current presence: a dormant user's
 * presence is their whole record, so one array slot per user replaces a map
 * entry and a record wrapper.
 */
import type { UserId } from '../domain/ids.js';
import { defaultPresence, type UserPresenceState } from '../domain/presence.js';

export class UserDirectory {
  private readonly ids: UserId[] = [];
  private readonly index = new Map<UserId, number>();
  /** 1 for a user of this server, by index: `isMine` once per user instead of a string scan per use. */
  private mine = new Uint8Array(1024);
  /** The stream id of each user's last notified change (0: never). */
  readonly lastStreamId: number[] = [];
  /** Current presence by index; `undefined` is the default state (never changed, or back to default while dormant). */
  readonly presenceAt: (UserPresenceState | undefined)[] = [];
  private stored = 0;
  /** Arrays other parts keep by user index, grown with the directory so they stay dense. */
  private readonly columns: unknown[][] = [];

  constructor(readonly serverName: string) {}

  /** Number of users met so far (indexes are 0 … size − 1). */
  get size(): number {
    return this.ids.length;
  }

  /** Users whose presence differs from the default. */
  get storedCount(): number {
    return this.stored;
  }

  /** A new per-user array, grown as users are added (a write far past the end would make it a slow dictionary). */
  column<T>(): (T | undefined)[] {
    // Grown by push from empty: `new Array(n)` would make a holey array, slower to read.
    const col: (T | undefined)[] = [];
    for (let i = 0; i < this.ids.length; i++) col.push(undefined);
    this.columns.push(col);
    return col;
  }

  /** True when `userId` belongs to this server, without slicing a string (this runs several times per input). */
  isMine(userId: string): boolean {
    const server = this.serverName;
    const colon = userId.indexOf(':');
    return colon >= 0 && userId.length - colon - 1 === server.length && userId.endsWith(server);
  }

  isMineAt(i: number): boolean {
    return this.mine[i] === 1;
  }

  /** The user's index, adding them when new. */
  indexOf(userId: UserId): number {
    const known = this.index.get(userId);
    return known === undefined ? this.add(userId) : known;
  }

  /** The user's index, or undefined when the directory has not met them. */
  find(userId: UserId): number | undefined {
    return this.index.get(userId);
  }

  has(userId: UserId): boolean {
    return this.index.has(userId);
  }

  idAt(i: number): UserId {
    return this.ids[i] as UserId;
  }

  /** Current presence of user `i` (the default state when none is stored). */
  stateAt(i: number): UserPresenceState {
    return this.presenceAt[i] ?? defaultPresence(this.ids[i] as UserId);
  }

  /** A known user's stored (non-default) presence. */
  storedPresence(userId: UserId): UserPresenceState | undefined {
    const i = this.index.get(userId);
    return i === undefined ? undefined : this.presenceAt[i];
  }

  storePresence(i: number, presence: UserPresenceState | undefined): void {
    const had = this.presenceAt[i] !== undefined;
    this.presenceAt[i] = presence;
    if (had !== (presence !== undefined)) this.stored += had ? -1 : 1;
  }

  /** Every stored (non-default) presence, in index order. */
  *storedStates(): IterableIterator<UserPresenceState> {
    for (const p of this.presenceAt) if (p !== undefined) yield p;
  }

  private add(userId: UserId): number {
    const i = this.ids.length;
    if (i === this.mine.length) {
      const grown = new Uint8Array(i * 2);
      grown.set(this.mine);
      this.mine = grown;
    }
    this.mine[i] = this.isMine(userId) ? 1 : 0;
    this.ids.push(userId);
    this.index.set(userId, i);
    this.lastStreamId.push(0);
    this.presenceAt.push(undefined);
    for (const col of this.columns) col.push(undefined);
    return i;
  }
}

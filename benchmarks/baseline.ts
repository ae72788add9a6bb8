/**
 * The naive baseline: what a straightforward implementation looks like. Plain
 * maps keyed by user id, one EventEmitter for all changes, every open sync
 * stream is a listener that filters every change itself ("do we share a
 * room?"), no coalescing (each change is emitted to each interested listener
 * as its own batch), and timers by scanning every user on each tick.
 * Same simplified rules as the engine for set presence / sync / activity /
 * idle and sync timeouts; no devices, federation or log.
 */
import { EventEmitter } from 'node:events';

interface NaiveState {
  readonly userId: string;
  readonly state: 'online' | 'unavailable' | 'offline';
  readonly lastActiveTs: number;
  readonly lastUserSyncTs: number;
  readonly statusMsg: string | null;
  readonly currentlyActive: boolean;
}

const IDLE_MS = 300_000;
const SYNC_MS = 30_000;
const TICK_MS = 5_000;

export class NaiveEngine {
  private readonly states = new Map<string, NaiveState>();
  private readonly syncs = new Map<string, number>();
  private readonly rooms = new Map<string, Set<string>>();
  private readonly roomsOf = new Map<string, Set<string>>();
  private readonly emitter = new EventEmitter();
  private time = 1_700_000_000_000;
  private nextTick = this.time + TICK_MS;
  deliveries = 0;
  updates = 0;

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  joinRoom(room: string, user: string): void {
    let m = this.rooms.get(room);
    if (m === undefined) this.rooms.set(room, (m = new Set()));
    m.add(user);
    let r = this.roomsOf.get(user);
    if (r === undefined) this.roomsOf.set(user, (r = new Set()));
    r.add(room);
  }

  shareRoom(a: string, b: string): boolean {
    if (a === b) return true;
    const ra = this.roomsOf.get(a);
    if (ra === undefined) return false;
    for (const room of ra) if (this.rooms.get(room)?.has(b) === true) return true;
    return false;
  }

  /** Each listener sees every change and keeps what concerns it. */
  syncStream(user: string, cb: (events: NaiveState[]) => void): () => void {
    const listener = (s: NaiveState) => {
      if (this.shareRoom(user, s.userId)) {
        this.deliveries++;
        cb([s]);
      }
    };
    this.emitter.on('presence', listener);
    return () => this.emitter.off('presence', listener);
  }

  private get(user: string): NaiveState {
    return (
      this.states.get(user) ?? { userId: user, state: 'offline', lastActiveTs: 0, lastUserSyncTs: 0, statusMsg: null, currentlyActive: false }
    );
  }

  private update(next: NaiveState): void {
    const prev = this.get(next.userId);
    this.states.set(next.userId, next);
    if (prev.state !== next.state || prev.statusMsg !== next.statusMsg || next.lastActiveTs - prev.lastActiveTs > 60_000) {
      this.updates++;
      this.emitter.emit('presence', next);
    }
  }

  setPresence(user: string, state: NaiveState['state'], statusMsg: string | null = null): void {
    const s = this.get(user);
    this.update({ ...s, state, statusMsg, lastActiveTs: state === 'online' ? this.time : s.lastActiveTs, currentlyActive: state === 'online' });
  }

  userSyncing(user: string): void {
    this.syncs.set(user, (this.syncs.get(user) ?? 0) + 1);
    const s = this.get(user);
    this.update({ ...s, state: s.state === 'offline' ? 'online' : s.state, lastActiveTs: this.time, lastUserSyncTs: this.time, currentlyActive: true });
  }

  syncEnded(user: string): void {
    const n = (this.syncs.get(user) ?? 1) - 1;
    if (n > 0) this.syncs.set(user, n);
    else this.syncs.delete(user);
    this.update({ ...this.get(user), lastUserSyncTs: this.time });
  }

  bumpActive(user: string): void {
    const s = this.get(user);
    this.update({ ...s, state: 'online', lastActiveTs: this.time, currentlyActive: true });
  }

  /** Advance time; every tick scans all users for timeouts. */
  advance(ms: number): void {
    const target = this.time + ms;
    while (this.nextTick <= target) {
      this.time = this.nextTick;
      this.nextTick += TICK_MS;
      for (const s of [...this.states.values()]) {
        if (s.state === 'offline') continue;
        if (!this.syncs.has(s.userId) && this.time - s.lastUserSyncTs > SYNC_MS && this.time - s.lastActiveTs > SYNC_MS) {
          this.update({ ...s, state: 'offline', currentlyActive: false });
        } else if (s.state === 'online' && this.time - s.lastActiveTs > IDLE_MS) {
          this.update({ ...s, state: 'unavailable', currentlyActive: false });
        }
      }
    }
    this.time = target;
  }

  /** Full read for one user: scan everyone (no change index). */
  getNewEvents(user: string, sinceTs: number): NaiveState[] {
    const out: NaiveState[] = [];
    for (const s of this.states.values()) if (s.lastActiveTs >= sinceTs && this.shareRoom(user, s.userId)) out.push(s);
    return out;
  }

  get size(): number {
    return this.states.size;
  }
}

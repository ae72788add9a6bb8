/**
 * Shared pieces of the model-based test: the user/room pool, building an engine
 * and a model side by side, and the comparisons made after every command.
 */
import { expect } from 'vitest';
import { isPresenceError, PresenceEngine, type EngineSnapshot, type SyncHandle, type UserPresenceState } from '../../src/index.js';
import { createTestEngine, flushMicrotasks, MemoryLogger, recordSyncStream, SimulatedClock } from '../../src/testing/index.js';
import { PresenceModel, type MState } from './reference-model.js';
import { modelRouter, registerRouters, type ModuleSpec } from './routers.js';

export const SERVER = 'test.local';
export const LOCALS = ['@a:test.local', '@b:test.local', '@c:test.local'] as const;
export const REMOTES = ['@r1:remote.one', '@r2:remote.one', '@s1:remote.two'] as const;
export const EVERYONE: readonly string[] = [...LOCALS, ...REMOTES];
export const ROOMS = ['!r1:test.local', '!r2:test.local', '!x:test.local'] as const;
/** `!x` is listed in `exclude_rooms_from_presence`. */
export const EXCLUDED_ROOM = '!x:test.local';
/** `undefined` is the default device (Synapse's device_id = None). */
export const DEVICES = [undefined, 'PHONE', 'LAPTOP'] as const;

export const ENGINE_CONFIG = {
  presence: { busy_enabled: true },
  exclude_rooms_from_presence: [EXCLUDED_ROOM],
};

export type Recorder = ReturnType<typeof recordSyncStream>;

export interface OpenSync {
  readonly user: string;
  readonly device: string | undefined;
  readonly handle: SyncHandle;
}

export interface Checkpoint {
  readonly token: number;
  readonly position: number;
}

/** The system under test and everything the commands need to reach it. */
export interface Real {
  readonly engine: PresenceEngine;
  readonly clock: SimulatedClock;
  readonly logger: MemoryLogger;
  readonly modules: readonly ModuleSpec[];
  readonly recorders: Map<number, Recorder>;
  readonly syncs: OpenSync[];
  readonly checkpoints: Checkpoint[];
  nextSubscription: number;
  snapshot: { snap: EngineSnapshot; position: number } | undefined;
  /** Federation items that carried more than a destination's policy view allows (docs/policies.md). */
  readonly leaks: string[];
  /** The operator callback's hidden pairs (registered again on replayed engines), or null. */
  readonly operator: readonly string[] | null;
}

export interface World {
  readonly model: PresenceModel;
}

/**
 * Pairs `viewer→target` (viewer: a user id or, for federation, a server name) an
 * operator `getVisibility` callback hides (docs/policies.md), or none.
 */
export function setup(modules: readonly ModuleSpec[], operatorHides: readonly string[] | null = null, largeRoomThreshold: number | null = null): { model: World; real: Real } {
  const config =
    largeRoomThreshold === null
      ? ENGINE_CONFIG
      : { ...ENGINE_CONFIG, presence: { ...ENGINE_CONFIG.presence, large_rooms: { mode: 'shared_rooms_only', member_threshold: largeRoomThreshold } } };
  const { engine, clock, logger } = createTestEngine({ serverName: SERVER, config });
  registerRouters(engine, modules);
  registerOperator(engine, operatorHides);
  const model = new PresenceModel({ now: clock.now(), serverName: SERVER, excludedRooms: [EXCLUDED_ROOM], period: engine.config.timerPeriod });
  model.router = modelRouter(modules);
  if (operatorHides !== null) model.operatorHides = new Set(operatorHides);
  model.largeRoomThreshold = largeRoomThreshold;
  const real: Real = {
    engine,
    clock,
    logger,
    modules,
    recorders: new Map(),
    syncs: [],
    checkpoints: [{ token: engine.currentToken, position: model.position }],
    nextSubscription: 1,
    snapshot: undefined,
    leaks: [],
    operator: operatorHides,
  };
  // Every federation send, whatever caused it: a user hidden from the destination must be sent the masked state.
  engine.federationOutbound$.subscribe((t) => {
    for (const edu of t.edus)
      for (const p of edu.content.push) {
        const user = p.user_id ?? '';
        if (!model.isLocal(user) || !model.hidesFromServer(t.destination, user)) continue;
        const masked = p.presence === 'offline' && p.last_active_ago === undefined && (p.status_msg ?? null) === null && p.currently_active !== true;
        if (!masked) real.leaks.push(`${t.destination} was sent ${JSON.stringify(p)} at t=${model.now}`);
      }
  });
  return { model: { model }, real };
}

const byUser = (a: { userId: string }, b: { userId: string }) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0);

export function plain(states: readonly (UserPresenceState | MState)[]): MState[] {
  return states.map((s) => ({ ...s }) as MState).sort(byUser);
}

/** Presence of every pool user equals the model's. */
export function checkPresence(engine: PresenceEngine, model: PresenceModel, label = 'engine'): void {
  for (const u of EVERYONE) {
    expect({ ...engine.getUserPresence(u) }, `${label}: presence of ${u} at t=${model.now}`).toEqual(model.stateOf(u));
  }
}

/** Every open sync stream has delivered exactly the model's view (folded per changed user). */
export function checkStreams(real: Real, model: PresenceModel): void {
  for (const [id, rec] of real.recorders) {
    const sub = model.subscriptions.get(id);
    expect(sub, `model subscription ${id}`).toBeDefined();
    for (const b of rec.batches) {
      // decisions.md: one delivery batch carries at most one state per user
      const ids = b.events.map((e) => e.userId);
      expect(new Set(ids).size, `stream #${id}: batch with a user twice: ${ids.join(', ')}`).toBe(ids.length);
      expect(b.token, `stream #${id}: batch token`).toBeLessThanOrEqual(real.engine.currentToken);
    }
    const got = plain([...rec.view().values()]);
    const want = plain([...(sub?.delivered.values() ?? [])]);
    expect(got, `stream #${id} of ${sub?.user} at t=${model.now}`).toEqual(want);
  }
}

/** A few earlier checkpoints: the first, the last and some in between. */
export function sampleCheckpoints(cps: readonly Checkpoint[]): Checkpoint[] {
  if (cps.length <= 6) return [...cps];
  const picks = new Set<number>([0, cps.length - 1, cps.length - 2]);
  for (let k = 1; k <= 3; k++) picks.add(Math.floor((k * (cps.length - 1)) / 4));
  return [...picks].sort((a, b) => a - b).map((i) => cps[i] as Checkpoint);
}

/** `getNewEvents` from earlier tokens (and with no token) answers exactly the model's changed-and-visible set. */
export async function checkPull(engine: PresenceEngine, model: PresenceModel, cps: readonly Checkpoint[], label = 'engine'): Promise<void> {
  for (const viewer of LOCALS) {
    for (const cp of sampleCheckpoints(cps)) {
      const r = await engine.getNewEvents(viewer, cp.token);
      expect(plain(r.events), `${label}: getNewEvents(${viewer}, token ${cp.token} = model position ${cp.position}) at t=${model.now}`).toEqual(
        plain(model.newEvents(viewer, cp.position)),
      );
      expect(r.nextToken).toBe(engine.currentToken);
    }
    const full = await engine.getNewEvents(viewer, null);
    expect(plain(full.events), `${label}: initial getNewEvents(${viewer}) at t=${model.now}`).toEqual(plain(model.newEvents(viewer, null)));
    if (model.router.interest(viewer) !== 'ALL') {
      const withOffline = await engine.getNewEvents(viewer, null, { includeOffline: true });
      expect(plain(withOffline.events), `${label}: initial getNewEvents(${viewer}, includeOffline) at t=${model.now}`).toEqual(
        plain(model.newEvents(viewer, null, true)),
      );
    }
  }
}

/**
 * GET /presence/{target}/status (§3.7): allowed for oneself and users sharing a
 * joined (not excluded) room — router results never grant visibility — and the
 * content's `presence` is the target's state (busy on the unstable wire value).
 */
export function checkVisibility(engine: PresenceEngine, model: PresenceModel): void {
  for (const viewer of LOCALS) {
    for (const target of EVERYONE) {
      const allowed = viewer === target || model.shareRoom(viewer, target);
      let content: { presence: string } | undefined;
      let error: unknown;
      try {
        content = engine.getPresence(viewer, target);
      } catch (e) {
        error = e;
      }
      if (allowed) {
        const state = model.seen(viewer, model.stateOf(target)).state;
        expect(content?.presence, `getPresence(${viewer}, ${target})`).toBe(state === 'busy' ? 'org.matrix.msc3026.busy' : state);
      } else {
        expect(isPresenceError(error) && error.code === 'FORBIDDEN', `getPresence(${viewer}, ${target}) must be forbidden`).toBe(true);
      }
    }
  }
}

/** After every command: let async deliveries land, compare, then remember a checkpoint. */
export async function checkAll(m: World, r: Real): Promise<void> {
  await flushMicrotasks(50);
  expect(r.leaks, 'federation sends a policy hides').toEqual([]);
  checkPresence(r.engine, m.model);
  checkStreams(r, m.model);
  checkVisibility(r.engine, m.model);
  await checkPull(r.engine, m.model, r.checkpoints);
  r.checkpoints.push({ token: r.engine.currentToken, position: m.model.position });
}

/** Build a second engine from the log (optionally from a snapshot plus the log after it). */
export function replayed(real: Real, snap?: EngineSnapshot): PresenceEngine {
  const clock = new SimulatedClock(real.clock.now());
  const engine = new PresenceEngine({
    config: real.engine.config,
    clock,
    logger: new MemoryLogger(),
    log: real.engine.log,
    ...(snap !== undefined ? { snapshot: snap } : {}),
  });
  registerRouters(engine, real.modules);
  registerOperator(engine, real.operator);
  return engine;
}

function registerOperator(engine: PresenceEngine, hides: readonly string[] | null): void {
  if (hides === null) return;
  const hidden = new Set(hides);
  engine.registerPresencePolicyCallback('operator', (viewer, target) => !hidden.has(`${viewer}→${target}`));
}

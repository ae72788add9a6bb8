/**
 * The per-user presence machine (XState v5).
 *
 *   init ─┬─ local  ── offline ⇄ online ⇄ unavailable ⇄ busy
 *         └─ remote ── offline ⇄ online ⇄ unavailable ⇄ busy
 *
 * `local` accepts client inputs (set presence, sync start/end, activity) and
 * runs the local timeouts (idle, sync, busy, currently-active window, federation
 * ping); `remote` accepts federation updates and expires after the federation
 * timeout. Both accept module-set presence. Every handler is a named action that
 * calls a pure rule from `src/domain/rules.ts` and then `finishStep`
 * (currently_active, should_notify, ping). The leaf state always mirrors the
 * user's combined presence through guarded eventless transitions, so
 * `snapshot.value` answers "is this user online?" without reading context.
 *
 * Time is part of every event (`now`): the machine never reads a clock, so a
 * transition is a pure function of (snapshot, event).
 */
import { assign, setup } from 'xstate';
import type { DeviceId } from '../src/domain/ids.js';
import type { PresenceValue, RuleConfig, UserRecord } from '../src/domain/presence.js';
import {
  bumpActive,
  finishStep,
  localTimeout,
  moduleSet,
  remoteTimeout,
  remoteUpdate,
  setState,
  syncEnded,
  syncStarted,
  type RemotePresenceUpdate,
  type StepResult,
} from '../src/domain/rules.js';

export type PresenceMachineEvent =
  | { type: 'presence.set'; now: number; deviceId: DeviceId; presence: PresenceValue; statusMsg: string | null; force?: boolean }
  | { type: 'sync.start'; now: number; deviceId: DeviceId; presence: 'online' | 'unavailable' }
  | { type: 'sync.end'; now: number; deviceId: DeviceId }
  | { type: 'activity'; now: number; deviceId: DeviceId }
  | { type: 'timeout'; now: number }
  | { type: 'remote.update'; now: number; update: RemotePresenceUpdate }
  | { type: 'module.set'; now: number; presence: PresenceValue; statusMsg: string | null; module?: string | undefined };

/** What the last event did: shared constant objects, so an idle actor costs no extra allocation. */
export interface StepOutcome {
  readonly notify: boolean;
  readonly ping: boolean;
}
const OUTCOMES: readonly StepOutcome[] = [
  { notify: false, ping: false },
  { notify: false, ping: true },
  { notify: true, ping: false },
  { notify: true, ping: true },
];
export const NO_CHANGE: StepOutcome = OUTCOMES[0] as StepOutcome;

export interface PresenceMachineContext {
  readonly record: UserRecord;
  readonly isMine: boolean;
  readonly rules: RuleConfig;
  readonly outcome: StepOutcome;
}

export interface PresenceMachineInput {
  readonly record: UserRecord;
  readonly isMine: boolean;
  readonly rules: RuleConfig;
}

type Ctx = PresenceMachineContext;

function apply(ctx: Ctx, candidate: UserRecord | null, now: number, force = false): Partial<Ctx> {
  if (candidate === null) return { outcome: NO_CHANGE };
  const r: StepResult = finishStep(ctx.record, candidate, ctx.isMine, now, ctx.rules, force);
  return { record: r.record, outcome: OUTCOMES[(r.notify ? 2 : 0) + (r.ping ? 1 : 0)] as StepOutcome };
}

/** The pure functions behind the machine's named actions: (context, event) → context patch. */
export const presenceSteps = {
  setPresence: (ctx: Ctx, e: Extract<PresenceMachineEvent, { type: 'presence.set' }>) =>
    apply(
      ctx,
      setState(ctx.record, { deviceId: e.deviceId, presence: e.presence, statusMsg: e.statusMsg, isSync: false }, e.now, ctx.rules),
      e.now,
      e.force === true,
    ),
  syncStart: (ctx: Ctx, e: Extract<PresenceMachineEvent, { type: 'sync.start' }>) =>
    apply(ctx, syncStarted(ctx.record, e.deviceId, e.presence, e.now, ctx.rules), e.now),
  syncEnd: (ctx: Ctx, e: Extract<PresenceMachineEvent, { type: 'sync.end' }>) =>
    apply(ctx, syncEnded(ctx.record, e.deviceId, e.now), e.now),
  activity: (ctx: Ctx, e: Extract<PresenceMachineEvent, { type: 'activity' }>) =>
    apply(ctx, bumpActive(ctx.record, e.deviceId, e.now), e.now),
  localTimeout: (ctx: Ctx, e: Extract<PresenceMachineEvent, { type: 'timeout' }>) =>
    apply(ctx, localTimeout(ctx.record, e.now, ctx.rules), e.now),
  remoteTimeout: (ctx: Ctx, e: Extract<PresenceMachineEvent, { type: 'timeout' }>) =>
    apply(ctx, remoteTimeout(ctx.record, e.now, ctx.rules), e.now),
  remoteUpdate: (ctx: Ctx, e: Extract<PresenceMachineEvent, { type: 'remote.update' }>) =>
    apply(ctx, remoteUpdate(ctx.record, e.update, e.now), e.now),
  moduleSet: (ctx: Ctx, e: Extract<PresenceMachineEvent, { type: 'module.set' }>) =>
    apply(ctx, moduleSet(ctx.record, e.presence, e.statusMsg), e.now, true),
};

/** The pure functions behind the machine's named guards. */
export const presenceGuards = {
  isLocal: (ctx: Ctx) => ctx.isMine,
  presenceIs: (ctx: Ctx, state: PresenceValue) => ctx.record.presence.state === state,
};

const STATES: readonly PresenceValue[] = ['offline', 'online', 'unavailable', 'busy'];

/** Named action for each event a region accepts: the one table behind both the machine and {@link presenceStepFor}. */
export type PresenceStepName = keyof typeof presenceSteps;
type Handlers = Partial<Record<PresenceMachineEvent['type'], PresenceStepName>>;
const LOCAL_HANDLERS: Handlers = {
  'presence.set': 'setPresence',
  'sync.start': 'syncStart',
  'sync.end': 'syncEnd',
  activity: 'activity',
  timeout: 'localTimeout',
  'module.set': 'moduleSet',
};
const REMOTE_HANDLERS: Handlers = {
  'remote.update': 'remoteUpdate',
  timeout: 'remoteTimeout',
  'module.set': 'moduleSet',
};

function onFrom(handlers: Handlers): Record<string, { actions: PresenceStepName }> {
  const on: Record<string, { actions: PresenceStepName }> = {};
  for (const [type, action] of Object.entries(handlers)) on[type] = { actions: action };
  return on;
}

/** A named action as a plain function: (context, event) → context patch. */
export type PresenceStepFn = (ctx: PresenceMachineContext, e: PresenceMachineEvent) => Partial<PresenceMachineContext>;

/**
 * The named action the machine runs for an event of `type` in the `local`
 * (isMine) or `remote` region, as a plain function, or undefined when that
 * region ignores the event. Read from the same tables the machine is built
 * from, so the two cannot disagree (the actor system's shortcut relies on it).
 */
export function presenceStepFor(isMine: boolean, type: PresenceMachineEvent['type']): PresenceStepFn | undefined {
  const name = (isMine ? LOCAL_HANDLERS : REMOTE_HANDLERS)[type];
  return name === undefined ? undefined : (presenceSteps[name] as PresenceStepFn);
}

export const presenceMachine = setup({
  types: {
    context: {} as PresenceMachineContext,
    events: {} as PresenceMachineEvent,
    input: {} as PresenceMachineInput,
  },
  guards: {
    isLocal: ({ context }) => presenceGuards.isLocal(context),
    presenceIs: ({ context }, params: { state: PresenceValue }) => presenceGuards.presenceIs(context, params.state),
  },
  actions: {
    setPresence: assign(({ context, event }) => (event.type === 'presence.set' ? presenceSteps.setPresence(context, event) : {})),
    syncStart: assign(({ context, event }) => (event.type === 'sync.start' ? presenceSteps.syncStart(context, event) : {})),
    syncEnd: assign(({ context, event }) => (event.type === 'sync.end' ? presenceSteps.syncEnd(context, event) : {})),
    activity: assign(({ context, event }) => (event.type === 'activity' ? presenceSteps.activity(context, event) : {})),
    localTimeout: assign(({ context, event }) => (event.type === 'timeout' ? presenceSteps.localTimeout(context, event) : {})),
    remoteTimeout: assign(({ context, event }) => (event.type === 'timeout' ? presenceSteps.remoteTimeout(context, event) : {})),
    remoteUpdate: assign(({ context, event }) => (event.type === 'remote.update' ? presenceSteps.remoteUpdate(context, event) : {})),
    moduleSet: assign(({ context, event }) => (event.type === 'module.set' ? presenceSteps.moduleSet(context, event) : {})),
  },
}).createMachine({
  id: 'presence',
  context: ({ input }) => ({ record: input.record, isMine: input.isMine, rules: input.rules, outcome: NO_CHANGE }),
  initial: 'init',
  states: {
    init: {
      always: [{ target: 'local', guard: 'isLocal' }, { target: 'remote' }],
    },
    local: {
      initial: 'offline',
      on: onFrom(LOCAL_HANDLERS),
      states: followPresence(),
    },
    remote: {
      initial: 'offline',
      on: onFrom(REMOTE_HANDLERS),
      states: followPresence(),
    },
  },
});

/** Leaf states that move, without an event, to the leaf matching the combined presence. */
function followPresence() {
  const leaf = (self: PresenceValue) => ({
    always: STATES.filter((s) => s !== self).map((s) => ({
      target: s,
      guard: { type: 'presenceIs' as const, params: { state: s } },
    })),
  });
  return { offline: leaf('offline'), online: leaf('online'), unavailable: leaf('unavailable'), busy: leaf('busy') };
}


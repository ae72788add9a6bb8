/**
 * `presence-engine/rules`: the pure presence rules the engine runs, with
 * their types, for checking behaviour outside the engine (a record, an input,
 * a time and the rule config in; the next record out; no clock, no I/O).
 * `ruleConfig(parseConfig(raw))` gives the config the engine would use.
 */
export {
  setState,
  syncStarted,
  syncEnded,
  bumpActive,
  localTimeout,
  remoteTimeout,
  remoteUpdate,
  moduleSet,
  finishStep,
  shouldNotify,
  combineDevices,
  nextDeadline,
  armedDeadlines,
  firedDeadline,
  DEADLINE_KINDS,
} from './domain/rules.js';
export type { StepResult, RemotePresenceUpdate, DeadlineKind, ArmedDeadline } from './domain/rules.js';
export { defaultRecord, defaultPresence, PRESENCE_PRIORITY, PRESENCE_VALUES } from './domain/presence.js';
export type { PresenceValue, UserPresenceState, DevicePresence, UserRecord, RuleConfig, PresenceTimers } from './domain/presence.js';
export { DEFAULT_TIMERS } from './domain/presence.js';
export { snapshotFromStates, RestoreInputSchema, RestoredStateSchema } from './domain/restore.js';
export type { RestoreInput } from './domain/restore.js';
export { ruleConfig } from './config.js';

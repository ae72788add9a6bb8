/**
 * presence-engine: an event-sourced presence engine for Matrix-style chat servers.
 * This is the only public entry; the testing kit is `presence-engine/testing`.
 */
export { PresenceEngine, createPresenceEngine } from './engine.js';
export type {
  EngineSnapshot,
  EngineStats,
  GetNewEventsOptions,
  NewEvents,
  PresenceEngineOptions,
  SetPresenceInput,
  StreamToken,
  SyncHandle,
  TurnTiming,
  UserInspection,
  UserSyncingInput,
} from './engine.js';
export type { ArmedDeadline, DeadlineKind } from './domain/rules.js';
export { snapshotFromStates } from './domain/restore.js';
export { explainUser, describeCause } from './domain/explain.js';
export type { Explanation, ExplainedStep } from './domain/explain.js';
export type { StepCause, StepInput } from './domain/events.js';
export type { PresencePolicy, PresencePolicyInput, PolicyList } from './domain/policy.js';
export { readLogDirectory } from './log/read-only.js';
export type { LogDirectoryReader } from './log/read-only.js';
export type { RestoreInput } from './domain/restore.js';
export type { PresenceBatch } from '../streams/sync-notifier.js';
export type { RoomWakeups, RoomWakeupCount } from '../streams/push-fanout.js';
export { coalesceWhileBusy, mergeBatches } from '../streams/coalesce-while-busy.js';

export { parseConfig, parseConfigYaml, presenceConfig, configErrorFromZod, HomeserverConfigSchema, DurationSchema } from './config.js';
export type { PresenceConfig, HomeserverConfigInput, ModuleEntry, LogConfig } from './config.js';

export {
  PresenceError,
  ConfigError,
  InvalidInputError,
  ForbiddenError,
  RateLimitedError,
  ModuleError,
  LogError,
  LogCorruptionError,
  EngineStoppedError,
  FederationError,
  RemoteUserLimitError,
  isPresenceError,
} from './errors.js';
export type { PresenceErrorCode, LogCorruption } from './errors.js';

export { UserIdSchema, RoomIdSchema, ServerNameSchema, DeviceIdSchema, parseUserId, parseRoomId, serverNameOf } from './domain/ids.js';
export type { UserId, RoomId, ServerName, DeviceId } from './domain/ids.js';
export { PRESENCE_VALUES, DEFAULT_TIMERS, defaultPresence } from './domain/presence.js';
export type { PresenceValue, UserPresenceState, DevicePresence, UserRecord, PresenceTimers } from './domain/presence.js';
export { formatPresence, formatPresenceEvent } from './domain/format.js';
export type { PresenceContent, PresenceEventJson } from './domain/format.js';
export type { PresenceEvent, LogEntry, UserStepEvent, MembershipEvent, FullPresenceRequestedEvent } from './domain/events.js';

export { PresenceInputEventSchema } from './inputs.js';
export type { PresenceInputEvent } from './inputs.js';

export { ALL_USERS, PresenceRouter } from './router/presence-router.js';
export type { PresenceRouterCallbacks, UsersForStatesResult, AllUsers, RouterStats, RouterCallStats } from './router/presence-router.js';
export { createModuleApi } from './router/module-api.js';
export type { PresenceModuleApi, PresenceRouterCallbacksInput, ModulePresenceUpdate } from './router/module-api.js';
export { loadPresenceModules } from './router/load-modules.js';
export type { LoadedPresenceModule, LoadPresenceModulesOptions, PresenceModuleKind } from './router/load-modules.js';
export type { RoomsAndUsersRoutingModule, RoomsAndUsersResult, RoutingDestinations } from './router/routing-modules.js';
export { createPresenceEngineFromConfig } from './hosting/load.js';
export type { CreateFromConfigOptions } from './hosting/load.js';

export { InMemoryEventLog, type InMemoryEventLogOptions } from './log/event-log.js';
export type { EventLog } from './log/event-log.js';
export { FileEventLog, MAX_RECORD_BYTES } from './log/file-log.js';
export type { FileEventLogOptions, FsyncPolicy, RecoveryReport, SnapshotInfo, DiskUsage, CorruptionStats, OnCorruption } from './log/file-log.js';
export { openDurableEngine } from './hosting/durable.js';
export type { DurableEngine, DurableEngineOptions, DurableRecovery } from './hosting/durable.js';
export { systemClock } from './clock.js';
export type { Clock, TimerHandle } from './clock.js';
export { consoleLogger, silentLogger, MemoryLogger } from './logger.js';
export type { Logger } from './logger.js';

export { parsePresenceEdu, buildPresenceEdus, MAX_PRESENCE_STATES_PER_EDU } from './federation/edu.js';
export type { PresenceEdu } from './federation/edu.js';
export { FederationTransportOptionsSchema } from './federation/outbound.js';
export type {
  FederationTransmission,
  FederationTransport,
  FederationTransportOptions,
  FederationLink,
  FederationOutboundStats,
  FederationDestinationState,
  FederationDestinationPhase,
} from './federation/outbound.js';
export { receiveTransactionEdus, FederationEduSchema, InboundFederation, InboundLimitsSchema } from './federation/inbound.js';
export type { FederationReceiver, TransactionResult, BoundedTransactionResult, InboundLimits, InboundFederationOptions } from './federation/inbound.js';
export { connectLoopback, LoopbackNetwork } from './federation/loopback.js';
export type { LoopbackOptions, LoopbackSend, LoopbackStats, LoopbackPeer } from './federation/loopback.js';

export { AppserviceRegistrationSchema, parseAppserviceRegistration, loadAppserviceRegistrations } from './appservice/registration.js';
export type { AppserviceRegistration, AppserviceRegistrationInput, EphemeralKeys } from './appservice/registration.js';
export { AppserviceDelivery, AppserviceTransactionError, httpAppserviceTransport } from './appservice/delivery.js';
export type { AppserviceDeliveryOptions, AppserviceDeliveryStats, AppserviceTransactionBody, AppserviceTransport } from './appservice/delivery.js';
export { AppserviceInterest } from './appservice/interest.js';
export { FilePositionStore, MemoryPositionStore } from './appservice/position-store.js';
export type { AppservicePositionStore } from './appservice/position-store.js';

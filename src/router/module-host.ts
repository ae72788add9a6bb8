/**
 * What presence modules need from the engine: the narrow surface the module
 * API and the module loader use. The engine satisfies it; modules never see
 * the engine class.
 */
import type { Clock } from '../clock.js';
import type { PresenceConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { GetVisibility, PresenceRouterCallbacks } from './presence-router.js';
import type { PresencePolicy } from '../domain/policy.js';

export interface PresenceModuleHost {
  readonly config: Pick<PresenceConfig, 'serverName' | 'modules' | 'presenceRouter' | 'routingModules'>;
  readonly logger: Logger;
  readonly clock: Clock;
  isMine(userId: string): boolean;
  registerPresenceRouter(moduleName: string, callbacks: PresenceRouterCallbacks): void;
  sendLocalOnlinePresenceTo(userIds: readonly string[]): void;
  setPresenceForUsers(users: Readonly<Record<string, { presence: string; statusMsg?: string | null | undefined }>>, moduleName?: string): void;
  setPresencePolicy(userId: string, policy: unknown): void;
  registerPresencePolicyCallback(moduleName: string, getVisibility: GetVisibility): void;
  invalidateVisibility(): void;
  getPresencePolicy(userId: string): PresencePolicy;
  getRoomsForUser(userId: string): string[];
  getRoomMembers(roomId: string): string[];
}

/**
 * The distributed side of one service process (docs/service.md, "Distributed
 * mode"): a RedisPresenceNode for the engine, sessions shared in Redis, this
 * process's address published for forwarding, and the forwarding inputs.
 *
 * Loaded with a dynamic import by server.ts only when `service.distributed` is
 * set, so a single-process service never loads ioredis (an optional peer).
 */
import { Subject } from 'rxjs';
import type { Clock, Logger, PresenceConfig, PresenceEvent } from '../../src/index.js';
import { RedisPresenceNode } from '../../src/hosting/redis-node.js';
import { commandTimeoutOf, openRedis } from '../../src/hosting/redis-settings.js';
import type { DistributedSettings, ServiceSettings } from '../config.js';
import type { DistributedPart } from '../distributed-part.js';
import { ForwardingInputs } from './forwarding.js';
import { OwnerDirectory } from './owners.js';
import { RedisSessionStore } from './redis-sessions.js';

/** The distributed part of a service process, with its node (tests and operators may look at it). */
export interface DistributedHost extends DistributedPart {
  readonly node: RedisPresenceNode;
}

export interface DistributedHostOptions {
  readonly config: PresenceConfig;
  readonly settings: ServiceSettings;
  readonly distributed: DistributedSettings;
  readonly clock?: Clock | undefined;
  readonly logger: Logger;
}

export async function startDistributedHost(o: DistributedHostOptions): Promise<DistributedHost> {
  const { config, settings, distributed: d, logger } = o;
  if (config.log.kind !== 'redis') throw new Error('startDistributedHost needs a redis log');
  const replicated = new Subject<readonly PresenceEvent[]>();
  const node = await RedisPresenceNode.start({
    config,
    logger,
    name: d.nodeId,
    leaseTtlMs: d.leaseTtlMs,
    ...(d.renewIntervalMs !== undefined ? { renewIntervalMs: d.renewIntervalMs } : {}),
    ...(o.clock !== undefined ? { clock: o.clock } : {}),
    redisSettings: d.redisSettings,
    waitReplicas: d.waitReplicas,
    onReplicated: (events) => replicated.next(events),
  });
  // Sessions and process addresses: the same Redis (one Redis, Sentinel's primary, or the Cluster).
  const redis = openRedis(config.log.url, commandTimeoutOf({ leaseTtlMs: d.leaseTtlMs }));
  redis.on('error', () => {}); // the node reports Redis trouble; these calls fail with their own errors
  try {
    await redis.connect();
  } catch (error) {
    await node.stop();
    throw error;
  }
  const prefix = config.log.stream_prefix;
  const owners = new OwnerDirectory(redis, prefix, Math.min(10_000, d.leaseTtlMs), logger);
  await owners.publish(node.instanceId, d.advertiseUrl);
  const sessions = new RedisSessionStore(redis, prefix, settings.maxSessionsPerUser, logger);
  const inputs = new ForwardingInputs({ node, owners, settings: d, maxBodyBytes: settings.maxBodyBytes, maxSyncMs: settings.maxSyncTimeoutMs, logger });
  let closing = false;
  logger.info(`distributed: process ${node.instanceId} at ${d.advertiseUrl}, ${node.partitions} partitions on ${config.log.url}`);
  return {
    node,
    engine: node.engine,
    sessions,
    inputs,
    replicated$: replicated.asObservable(),
    routes: [inputs.internalRoute()],
    attachFederationTransport: (transport, options) => node.attachFederationTransport(transport, options),
    preload: (rooms) => {
      void (async () => {
        for (const room of rooms) {
          for (const member of room.members) {
            while (!closing) {
              try {
                await inputs.setMembership(room.roomId, member, 'join');
                break;
              } catch (error) {
                logger.warn(`distributed: could not join ${member} to ${room.roomId} yet (retrying): ${String(error)}`);
                await new Promise((r) => setTimeout(r, 1_000));
              }
            }
          }
        }
      })();
    },
    close: async () => {
      closing = true;
      inputs.close();
      await owners.withdraw(node.instanceId);
      await node.stop();
      replicated.complete();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

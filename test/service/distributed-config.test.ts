/**
 * `service.distributed` validation (docs/service.md, "Distributed mode"): it
 * goes with a redis log, and the parts not distributed yet are refused with a
 * config error that says so.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/index.js';
import { parseServiceConfig } from '../../service/config.js';
import { testConfig } from './helpers.js';

const redisLog = { log: { kind: 'redis', url: 'redis://127.0.0.1:6379', partitions: 4 } };
const distributed = { node_id: 'p1', advertise_url: 'http://127.0.0.1:8008/', forward_secret: 'forward-secret-0123456789' };

function problem(config: Record<string, unknown>): ConfigError {
  try {
    parseServiceConfig(config);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('service.distributed', () => {
  it('is parsed with its defaults next to a redis log', () => {
    const { settings } = parseServiceConfig(testConfig({ top: redisLog, service: { distributed } }));
    expect(settings.distributed).toEqual({ nodeId: 'p1', advertiseUrl: 'http://127.0.0.1:8008', forwardSecret: distributed.forward_secret, leaseTtlMs: 10_000, renewIntervalMs: undefined, forwardTimeoutMs: 30_000, redisSettings: 'warn', waitReplicas: 0 });
    expect(parseServiceConfig(testConfig()).settings.distributed).toBeUndefined();
  });

  it('refuses a redis log without it, and it without a redis log', () => {
    expect(problem(testConfig({ top: redisLog })).message).toMatch(/service\.distributed/);
    expect(problem(testConfig({ service: { distributed } })).message).toMatch(/kind: redis/);
  });

  it('refuses what is not distributed yet, a short secret and a renewal not under the TTL', () => {
    expect(problem(testConfig({ top: redisLog, service: { distributed, federation: { peers: [{ server_name: 'other.test', url: 'http://127.0.0.1:9', shared_secret: 'shared-secret-0123456789' }] } } })).message).toMatch(/federation is not supported in distributed mode/);
    expect(problem(testConfig({ top: { ...redisLog, app_service_config_files: ['as.yaml'] }, service: { distributed } })).message).toMatch(/application services/);
    expect(problem(testConfig({ top: redisLog, service: { distributed, login: { sessions_file: 's.json' } } })).message).toMatch(/sessions live in Redis/);
    expect(problem(testConfig({ top: redisLog, service: { distributed: { ...distributed, forward_secret: 'short' } } })).message).toMatch(/at least 16/);
    expect(problem(testConfig({ top: redisLog, service: { distributed: { ...distributed, lease_ttl_ms: 1000, renew_interval_ms: 1000 } } })).message).toMatch(/less than lease_ttl_ms/);
  });

  it('takes Sentinel and Cluster URLs, wait_replicas on one Redis or Sentinel, and refuses wait_replicas on a Cluster', () => {
    const sentinel = { log: { kind: 'redis', url: 'redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/presence', partitions: 4 } };
    const cluster = { log: { kind: 'redis', url: 'redis-cluster://10.0.0.1:7000,10.0.0.2:7000', partitions: 4 } };
    expect(parseServiceConfig(testConfig({ top: sentinel, service: { distributed: { ...distributed, wait_replicas: 1 } } })).settings.distributed?.waitReplicas).toBe(1);
    expect(parseServiceConfig(testConfig({ top: cluster, service: { distributed } })).settings.distributed?.waitReplicas).toBe(0);
    const refused = problem(testConfig({ top: cluster, service: { distributed: { ...distributed, wait_replicas: 1 } } }));
    expect(refused.path).toBe('service.distributed.wait_replicas');
    expect(refused.message).toMatch(/not available on Redis Cluster/);
    const upper = { log: { kind: 'redis', url: 'REDIS-CLUSTER://10.0.0.1:7000', partitions: 4 } };
    expect(problem(testConfig({ top: upper, service: { distributed: { ...distributed, wait_replicas: 2 } } })).path).toBe('service.distributed.wait_replicas');
    expect(problem(testConfig({ top: { log: { kind: 'redis', url: 'redis-cluster://10.0.0.1', partitions: 4 } }, service: { distributed } })).message).toMatch(/log\.url.*host:port/);
  });
});

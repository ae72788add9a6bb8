/**
 * `log.url` for a distributed deployment: one Redis, a Sentinel-managed
 * primary or a Redis Cluster (src/redis-url.ts), checked when the config is
 * read, with messages that say what a valid URL looks like.
 */
import { describe, expect, it } from 'vitest';
import { toPresenceConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { describeRedisTarget, parseRedisUrl } from '../../src/redis-url.js';

describe('parseRedisUrl', () => {
  it('keeps redis:// and rediss:// URLs as they are (one Redis)', () => {
    expect(parseRedisUrl('redis://:secret@10.0.0.5:6380/2')).toEqual({ kind: 'single', url: 'redis://:secret@10.0.0.5:6380/2' });
    expect(parseRedisUrl('rediss://cache.internal:6380')).toEqual({ kind: 'single', url: 'rediss://cache.internal:6380' });
    expect(describeRedisTarget(parseRedisUrl('redis://:secret@10.0.0.5:6380'))).toBe('redis://***@10.0.0.5:6380');
  });

  it('reads sentinels, the primary name and credentials from redis-sentinel://', () => {
    expect(parseRedisUrl('redis-sentinel://app:p%40ss@10.0.0.1:26379,sentinel-b:26380,[::1]:26381/my%20primary')).toEqual({
      kind: 'sentinel',
      primary: 'my primary',
      sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: 'sentinel-b', port: 26380 }, { host: '::1', port: 26381 }],
      username: 'app',
      password: 'p@ss',
    });
    expect(describeRedisTarget(parseRedisUrl('redis-sentinel://:x@a:1/m'))).toBe('Sentinel primary "m" via a:1');
  });

  it('reads the seed nodes from redis-cluster://', () => {
    expect(parseRedisUrl('redis-cluster://:pw@127.0.0.1:7000,127.0.0.1:7001')).toEqual({
      kind: 'cluster',
      nodes: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }],
      password: 'pw',
    });
  });

  it.each([
    ['http://localhost:6379', /must start with redis:\/\/, rediss:\/\/, redis-sentinel:\/\/ or redis-cluster:\/\//],
    ['localhost:6379', /must start with/],
    ['redis-sentinel://a:26379', /ends with the primary's name/],
    ['redis-sentinel://a:26379/', /ends with the primary's name/],
    ['redis-cluster://a:7000/0', /has no path/],
    ['redis-cluster://a', /host:port/],
    ['redis-cluster://a:70000', /a port 1–65535/],
    ['redis-cluster://a:7000,,b:7001', /got ""/],
  ])('refuses %s with a ConfigError at log.url', (url, message) => {
    const attempt = () => parseRedisUrl(url);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(message);
    try {
      attempt();
    } catch (error) {
      expect((error as ConfigError).path).toBe('log.url');
    }
  });
});

describe('log.url in the config', () => {
  const config = (url: string) => ({ server_name: 'example.org', log: { kind: 'redis' as const, url } });

  it('accepts the three kinds', () => {
    for (const url of ['redis://127.0.0.1:6379', 'redis-sentinel://127.0.0.1:26379/presence', 'redis-cluster://127.0.0.1:7000']) {
      const log = toPresenceConfig(config(url)).log;
      expect(log).toMatchObject({ kind: 'redis', url });
    }
  });

  it('refuses a malformed URL when the config is read, naming the key and the fix', () => {
    expect(() => toPresenceConfig(config('redis-sentinel://127.0.0.1:26379'))).toThrow(ConfigError);
    expect(() => toPresenceConfig(config('redis-sentinel://127.0.0.1:26379'))).toThrow(/log\.url.*primary's name as Sentinel knows it/);
  });
});

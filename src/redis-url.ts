/**
 * The Redis a distributed deployment uses, named by one URL (`log.url`):
 *
 * - `redis://[user:password@]host:port[/db]` (or `rediss://`): one Redis;
 * - `redis-sentinel://[user:password@]host:port,host:port/<primary name>`:
 *   the primary Sentinel names, found through these sentinels (and found again
 *   after a fail-over);
 * - `redis-cluster://[user:password@]host:port,host:port`: a Redis Cluster,
 *   these nodes being where the client starts discovering the others.
 *
 * Credentials authenticate to the Redis servers (for Sentinel: the primary and
 * its replicas, not the sentinels). Parsed once, when the config is read.
 */
import { ConfigError } from './errors.js';

export interface RedisHost {
  readonly host: string;
  readonly port: number;
}

export type RedisTarget =
  | { readonly kind: 'single'; readonly url: string }
  | { readonly kind: 'sentinel'; readonly primary: string; readonly sentinels: readonly RedisHost[]; readonly username?: string; readonly password?: string }
  | { readonly kind: 'cluster'; readonly nodes: readonly RedisHost[]; readonly username?: string; readonly password?: string };

const SCHEMES = 'redis://, rediss://, redis-sentinel:// or redis-cluster://';

/**
 * @throws ConfigError (key `log.url`) saying what is wrong with the URL and what a valid one looks like.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const target = readRedisUrl(url);
  if (typeof target === 'string') throw new ConfigError('log.url', target);
  return target;
}

/** What is wrong with `url` as a `log.url`, or undefined when it names a Redis. */
export function redisUrlProblem(url: string): string | undefined {
  const target = readRedisUrl(url);
  return typeof target === 'string' ? target : undefined;
}

/** The target, or what is wrong with the URL. */
function readRedisUrl(url: string): RedisTarget | string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') return { kind: 'single', url };
  if (scheme !== 'redis-sentinel' && scheme !== 'redis-cluster') return `must start with ${SCHEMES}, got ${JSON.stringify(url.slice(0, 80))}`;
  const rest = url.slice(scheme.length + 3);
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const afterAuth = at >= 0 ? rest.slice(at + 1) : rest;
  const slash = afterAuth.indexOf('/');
  const hostList = slash >= 0 ? afterAuth.slice(0, slash) : afterAuth;
  const path = slash >= 0 ? afterAuth.slice(slash + 1) : '';
  const hosts: RedisHost[] = [];
  for (const h of hostList.split(',')) {
    const host = parseHost(h);
    if (host === undefined) return `each host of a redis-sentinel or redis-cluster URL is host:port (a port 1–65535), comma-separated; got ${JSON.stringify(h)} in ${JSON.stringify(url)}`;
    hosts.push(host);
  }
  const credentials = parseAuth(auth);
  if (scheme === 'redis-sentinel') {
    const primary = decodeURIComponent(path);
    if (primary === '' || primary.includes('/')) return `a redis-sentinel URL ends with the primary's name as Sentinel knows it, e.g. redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster; got ${JSON.stringify(url)}`;
    return { kind: 'sentinel', primary, sentinels: hosts, ...credentials };
  }
  if (path !== '') return `a redis-cluster URL has no path (Redis Cluster has one database), e.g. redis-cluster://10.0.0.1:7000,10.0.0.2:7000; got ${JSON.stringify(url)}`;
  return { kind: 'cluster', nodes: hosts, ...credentials };
}

/** A description without credentials, for logs and messages. */
export function describeRedisTarget(target: RedisTarget): string {
  switch (target.kind) {
    case 'single':
      return target.url.replace(/\/\/[^@/]*@/, '//***@');
    case 'sentinel':
      return `Sentinel primary "${target.primary}" via ${target.sentinels.map((h) => `${h.host}:${h.port}`).join(',')}`;
    case 'cluster':
      return `Redis Cluster via ${target.nodes.map((h) => `${h.host}:${h.port}`).join(',')}`;
  }
}

function parseHost(text: string): RedisHost | undefined {
  const m = /^(\[[0-9a-f:]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/i.exec(text);
  const port = Number(m?.[2]);
  if (m === null || !(port >= 1 && port <= 65_535)) return undefined;
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port };
}

function parseAuth(auth: string): { username?: string; password?: string } {
  if (auth === '') return {};
  const colon = auth.indexOf(':');
  const username = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : auth);
  const password = colon >= 0 ? decodeURIComponent(auth.slice(colon + 1)) : undefined;
  return { ...(username !== '' ? { username } : {}), ...(password !== undefined && password !== '' ? { password } : {}) };
}

/**
 * The Redis settings a distributed deployment relies on (docs/distributed.md,
 * "Deployment recipe"), checked once at start-up: each finding says what can go
 * wrong and which setting fixes it.
 */
import type { Redis } from 'ioredis';

export interface SettingsCheck {
  /** Findings; empty when every setting is as recommended. */
  readonly findings: string[];
  /** False when `CONFIG GET` is not allowed (renamed or ACL): nothing could be checked. */
  readonly checked: boolean;
}

export async function checkRedisSettings(redis: Redis, waitReplicas: number): Promise<SettingsCheck> {
  const get = async (name: string): Promise<string | undefined> => {
    const reply = (await redis.config('GET', name)) as string[];
    return reply[1];
  };
  let appendonly: string | undefined;
  let appendfsync: string | undefined;
  let policy: string | undefined;
  let minReplicas: string | undefined;
  try {
    [appendonly, appendfsync, policy, minReplicas] = await Promise.all([get('appendonly'), get('appendfsync'), get('maxmemory-policy'), get('min-replicas-to-write')]);
  } catch {
    return { findings: ['CONFIG GET is not allowed, so the persistence settings could not be checked; see docs/distributed.md for the ones required'], checked: false };
  }
  const findings: string[] = [];
  if (appendonly !== 'yes') {
    findings.push('appendonly is not yes: a Redis restart loses the presence streams and leases (detected and re-seeded from the processes\' views, but a process that dies meanwhile takes its last changes with it); set appendonly yes');
  } else if (appendfsync !== 'always') {
    findings.push(`appendfsync is ${String(appendfsync)}: a Redis crash can lose acknowledged writes of the last second; set appendfsync always (or use waitReplicas with replicas)`);
  }
  if (policy !== undefined && policy !== 'noeviction') {
    findings.push(`maxmemory-policy is ${policy}: Redis may evict leases or streams under memory pressure; set maxmemory-policy noeviction`);
  }
  if (waitReplicas > 0 && Number(minReplicas ?? '0') < waitReplicas) {
    findings.push(`min-replicas-to-write is ${String(minReplicas)} with waitReplicas ${waitReplicas}: the primary accepts writes no replica has; set min-replicas-to-write ${waitReplicas}`);
  }
  return { findings, checked: true };
}

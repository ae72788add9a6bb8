/**
 * Checks of a configured `log.path` before the file log opens it, so a bad
 * path is a ConfigError naming `log.path` and the path (not a LogError from
 * deep inside the log), and start-up never blocks on a path that is not a
 * real directory (a FIFO, a device, or a kernel pseudo-filesystem such as
 * /proc or /sys, where writes can block or do something else entirely).
 */
import { accessSync, constants, mkdirSync, realpathSync, statSync, statfsSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { ConfigError } from '../errors.js';

/** Kernel pseudo-filesystems by `statfs` magic number (linux/magic.h). */
const PSEUDO_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0xcafe4a11, 'bpf'],
  [0x62656570, 'configfs'],
  [0x42494e4d, 'binfmt_misc'],
  [0x6e736673, 'nsfs'],
  [0x50495045, 'pipefs'],
]);

/** Top directories that are never a place for data, whatever filesystem backs them. */
const PSEUDO_ROOTS = ['/proc', '/sys', '/dev'];

/**
 * Make sure `path` (already resolved) can hold the log: refuse pseudo
 * filesystems and non-directories, create it when missing, and check it is
 * writable. @throws ConfigError with `field` and the path.
 */
export function checkLogDirectory(path: string, field = 'log.path'): void {
  const abs = resolve(path);
  const fail = (why: string, cause?: unknown): never => {
    throw new ConfigError(field, `${abs} ${why}`, cause === undefined ? undefined : { cause });
  };
  // The nearest part of the path that exists decides where the directory would live.
  let existing = abs;
  for (;;) {
    try {
      statSync(existing);
      break;
    } catch {
      const up = dirname(existing);
      if (up === existing) break;
      existing = up;
    }
  }
  let real = existing;
  try {
    real = realpathSync(existing);
  } catch (error) {
    fail(`cannot be resolved: ${(error as Error).message}`, error);
  }
  for (const root of PSEUDO_ROOTS) {
    if (real === '/dev/shm' || real.startsWith('/dev/shm/')) break; // a RAM disk: volatile, but a real filesystem
    if (real === root || real.startsWith(root + sep)) fail(`is inside ${root}, a kernel pseudo-filesystem; choose a directory on a real disk for the log`);
  }
  try {
    const fs = PSEUDO_FILESYSTEMS.get(Number(statfsSync(real).type));
    if (fs !== undefined) fail(`is on a ${fs} filesystem (a kernel pseudo-filesystem); choose a directory on a real disk for the log`);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    fail(`cannot be examined: ${(error as Error).message}`, error);
  }
  if (existing === abs && !statSync(abs).isDirectory()) fail('exists and is not a directory; log.path names the directory that holds the log');
  try {
    mkdirSync(abs, { recursive: true });
  } catch (error) {
    fail(`cannot be created: ${(error as Error).message}`, error);
  }
  try {
    accessSync(abs, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (error) {
    fail(`is not readable and writable by this process: ${(error as Error).message}`, error);
  }
}

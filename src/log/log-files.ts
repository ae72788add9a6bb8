/**
 * File-system steps of the file log: positional writes, durable (atomic)
 * file creation, directory fsync, and the directory's LOCK file.
 */
import { closeSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LogError } from '../errors.js';

/** Write all of `buf` at `position` (writeSync may write less than asked). */
export function writeAll(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, position + done);
}

/** Write a file atomically: `<file>.tmp`, fsync, rename over `file` (fsync the directory to make the rename durable). */
export function writeFileDurably(file: string, parts: readonly Buffer[]): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    let at = 0;
    for (const p of parts) {
      writeAll(fd, p, at);
      at += p.length;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** Make a rename or unlink in `dir` durable (not supported everywhere; best effort). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms cannot fsync a directory.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function tryUnlink(file: string): boolean {
  try {
    unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Directories opened by this process (the LOCK file guards against other processes). */
const OPEN_DIRS = new Set<string>();

/** Take the directory: one process, one open log. A LOCK left by a dead process is taken over. Returns the real path. */
export function acquireLock(dir: string): string {
  const real = realpathSync(dir);
  if (OPEN_DIRS.has(real)) throw new LogError(`the log in ${dir} is already open in this process; close it first`);
  const lockFile = join(real, 'LOCK');
  let fd: number;
  try {
    fd = openSync(lockFile, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new LogError(`cannot lock ${dir}: ${(error as Error).message}`, { cause: error });
    }
    let pid = NaN;
    try {
      pid = Number.parseInt(readFileSync(lockFile, 'utf8'), 10);
    } catch {
      // unreadable: treat as stale
    }
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new LogError(`the log in ${dir} is in use by process ${pid} (${lockFile}); stop it first`);
    }
    fd = openSync(lockFile, 'w');
  }
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  OPEN_DIRS.add(real);
  return real;
}

export function releaseLock(real: string): void {
  if (!OPEN_DIRS.delete(real)) return;
  tryUnlink(join(real, 'LOCK'));
}

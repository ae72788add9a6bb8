/**
 * JSON logs with levels through pino, adapted to the engine's {@link Logger}
 * interface (message plus optional fields). One line per entry on stdout:
 * `{"level":30,"time":…,"msg":"…",…fields}`; pipe through `pino-pretty` to read
 * them by eye.
 */
import { pino, type Logger as Pino } from 'pino';
import type { Logger } from '../../src/index.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** The engine's logger interface over a pino logger. */
export function fromPino(p: Pino): Logger {
  return {
    debug: (message, fields) => p.debug(fields ?? {}, message),
    info: (message, fields) => p.info(fields ?? {}, message),
    warn: (message, fields) => p.warn(fields ?? {}, message),
    error: (message, fields) => p.error(fields ?? {}, message),
  };
}

/** A pino logger writing JSON lines to stdout synchronously (nothing is lost on `process.exit`). */
export function createServiceLogger(level: LogLevel): { readonly logger: Logger; readonly pino: Pino } {
  const p = pino({ level, base: { pid: process.pid, name: 'presence-engine' } }, pino.destination({ dest: 1, sync: true }));
  return { logger: fromPino(p), pino: p };
}

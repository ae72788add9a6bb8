/** Minimal structured logger interface; bring your own (pino, console, …). */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const write = (level: string) => (message: string, fields?: Record<string, unknown>) => {
  const line = fields === undefined ? message : `${message} ${JSON.stringify(fields)}`;
  process.stderr.write(`[presence] ${level} ${line}\n`);
};

/** Writes warnings and errors to stderr. */
export const consoleLogger: Logger = { debug: () => {}, info: () => {}, warn: write('WARN'), error: write('ERROR') };

/** Discards everything. */
export const silentLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** Keeps every entry in memory: handy in tests. */
export class MemoryLogger implements Logger {
  readonly entries: { level: 'debug' | 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> }[] = [];
  debug(message: string, fields?: Record<string, unknown>): void { this.push('debug', message, fields); }
  info(message: string, fields?: Record<string, unknown>): void { this.push('info', message, fields); }
  warn(message: string, fields?: Record<string, unknown>): void { this.push('warn', message, fields); }
  error(message: string, fields?: Record<string, unknown>): void { this.push('error', message, fields); }
  private push(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void {
    this.entries.push(fields === undefined ? { level, message } : { level, message, fields });
  }
  warnings(): string[] { return this.entries.filter((e) => e.level === 'warn').map((e) => e.message); }
}

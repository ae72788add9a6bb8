/**
 * `presence-engine serve [config]`: run the reference service until SIGTERM
 * or SIGINT, then shut down cleanly (answer open long-polls, finish requests,
 * write the shutdown snapshot of a file log, flush) and exit 0. A second
 * signal a second or more after the first exits at once with status 1.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isPresenceError } from '../src/index.js';
import { createServiceLogger, isLogLevel, LOG_LEVELS, type LogLevel } from './ops/logging.js';
import { startPresenceService, type PresenceService } from './server.js';

/** A second signal within this many ms of the first is the same request (see onSignal). */
const REPEAT_MS = 1_000;
/** How often a service started by npm checks that its parent is still there. */
const PARENT_POLL_MS = 250;

export const SERVE_USAGE = `usage: presence-engine serve [<homeserver.yaml>] [options]

Run the reference presence service (docs/service.md).

  <homeserver.yaml>, -c, --config <path>
                       config file (default: $PRESENCE_CONFIG, else the bundled
                       examples/homeserver.yaml on 127.0.0.1:8008)
  --host <host>        override service.listen.host (or $PRESENCE_HOST)
  --port <port>        override service.listen.port (or $PRESENCE_PORT; 0: any free port)
  --log-level <level>  ${LOG_LEVELS.join(', ')} (or $PRESENCE_LOG_LEVEL; default info)
  -h, --help           this text

Logs are JSON lines on stdout. SIGTERM or SIGINT stops the service cleanly;
a second signal (a second or more later) exits at once with status 1.`;

/** The config used when none is given: the example next to this file (source) or in dist/ (compiled). */
export function defaultConfigPath(): string {
  return fileURLToPath(new URL('../examples/homeserver.yaml', import.meta.url));
}

export async function serve(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string', short: 'c' },
        host: { type: 'string' },
        port: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${SERVE_USAGE}\n`);
    return 2;
  }
  if (args.values.help === true) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  const fail = (message: string): number => {
    process.stderr.write(`${message}\n\n${SERVE_USAGE}\n`);
    return 2;
  };
  if (args.positionals.length > 1) return fail('give at most one config path');
  const levelText = args.values['log-level'] ?? process.env.PRESENCE_LOG_LEVEL ?? (process.env.PRESENCE_DEBUG === '1' ? 'debug' : 'info');
  if (!isLogLevel(levelText)) return fail(`invalid log level ${levelText}: use one of ${LOG_LEVELS.join(', ')}`);
  const level: LogLevel = levelText;
  const configPath = args.values.config ?? args.positionals[0] ?? process.env.PRESENCE_CONFIG ?? defaultConfigPath();
  const portText = args.values.port ?? process.env.PRESENCE_PORT;
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (portText.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65_535) return fail(`invalid port ${portText}: give a whole number from 0 to 65535`);
  }
  const host = args.values.host ?? process.env.PRESENCE_HOST;

  const { logger } = createServiceLogger(level);
  process.on('unhandledRejection', (reason) => logger.error('unhandled rejection (kept running)', { reason: reason instanceof Error ? reason.stack : String(reason) }));

  // Signals that arrive during start-up (a long replay) stop the service as soon as it is up.
  let signalled: string | undefined;
  let service: PresenceService | undefined;
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  let firstSignalAt = 0;
  const onSignal = (signal: string): void => {
    const now = performance.now();
    if (signalled !== undefined) {
      // Ctrl-C reaches both npm and the service, and npm forwards it: one press, two signals.
      if (now - firstSignalAt < REPEAT_MS) return;
      logger.warn(`${signal} again: exiting now without a clean shutdown`);
      process.exit(1);
    }
    firstSignalAt = now;
    shutdown(signal);
  };
  const shutdown = (signal: string): void => {
    signalled = signal;
    if (service === undefined) {
      logger.info(`${signal} during start-up: stopping once started`);
      return;
    }
    logger.info(`${signal}: shutting down`);
    const t0 = performance.now();
    service.close().then(
      () => {
        logger.info(`stopped in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        resolveExit(0);
      },
      (error: unknown) => {
        logger.error('error during shutdown', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
        resolveExit(1);
      },
    );
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  // Under npm (npx, npm exec, npm start) a shell may sit between npm and this process and not pass a
  // signal on: when the process that started us goes away, stop as if signalled.
  if (process.env.npm_command !== undefined) {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent && signalled === undefined) {
        logger.info(`the parent process (${parent}, run by npm ${process.env.npm_command}) exited`);
        onSignal('parent exit');
      }
    }, PARENT_POLL_MS).unref();
  }

  logger.info(`starting with config ${configPath}`);
  try {
    service = await startPresenceService({ configPath, logger, ...(port !== undefined ? { port } : {}), ...(host !== undefined ? { host } : {}) });
  } catch (error) {
    logger.error(isPresenceError(error) ? error.message : `could not start: ${error instanceof Error ? error.message : String(error)}`, { config: configPath });
    return 1;
  }
  logger.info(`config ${configPath}; ${service.settings.tokens.size} user(s), ${service.settings.rooms.length} room(s), ${service.settings.peers.size} peer(s)`);
  if (signalled !== undefined) shutdown(signalled);
  return exited;
}

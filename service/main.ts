/**
 * `npm start`: run the reference service.
 *
 *   npm start                                  # examples/homeserver.yaml on 127.0.0.1:8008
 *   npm start -- path/to/homeserver.yaml       # another config (or --config path)
 *   PRESENCE_CONFIG=path npm start             # the same through the environment
 *   npm start -- --port 8009 --host 0.0.0.0    # override service.listen (or PRESENCE_PORT / PRESENCE_HOST)
 *
 * Logs where it listens; SIGINT/SIGTERM shut it down cleanly (a second signal forces the exit).
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isPresenceError, type Logger } from '../src/index.js';
import { startPresenceService, type PresenceService } from './server.js';

const write =
  (level: string) =>
  (message: string, fields?: Record<string, unknown>): void => {
    const line = fields === undefined ? message : `${message} ${JSON.stringify(fields)}`;
    process.stderr.write(`${new Date().toISOString()} ${level} ${line}\n`);
  };

const logger: Logger = {
  debug: process.env.PRESENCE_DEBUG === '1' ? write('DEBUG') : () => {},
  info: write('INFO'),
  warn: write('WARN'),
  error: write('ERROR'),
};

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: tsx service/main.ts [--config <homeserver.yaml> | <homeserver.yaml>] [--host <host>] [--port <port>]\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      args: process.argv.slice(2),
      options: { config: { type: 'string', short: 'c' }, host: { type: 'string' }, port: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
  } catch (error) {
    usage((error as Error).message);
  }
  if (args.values.help === true) usage('presence-engine reference service');
  if (args.positionals.length > 1) usage('give at most one config path');
  const configPath =
    args.values.config ?? args.positionals[0] ?? process.env.PRESENCE_CONFIG ?? fileURLToPath(new URL('../examples/homeserver.yaml', import.meta.url));
  const portText = args.values.port ?? process.env.PRESENCE_PORT;
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) usage(`invalid port ${portText}`);
  }
  const host = args.values.host ?? process.env.PRESENCE_HOST;

  process.on('unhandledRejection', (reason) => logger.error('unhandled rejection (kept running)', { reason: reason instanceof Error ? reason.stack : String(reason) }));

  let service: PresenceService;
  try {
    service = await startPresenceService({ configPath, logger, ...(port !== undefined ? { port } : {}), ...(host !== undefined ? { host } : {}) });
  } catch (error) {
    logger.error(isPresenceError(error) ? error.message : `could not start: ${error instanceof Error ? error.message : String(error)}`, { config: configPath });
    process.exit(1);
  }
  logger.info(`config ${configPath}; ${service.settings.userCount} user(s), ${service.settings.rooms.length} room(s), ${service.settings.peers.size} peer(s)`);

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    logger.info(`${signal}: shutting down`);
    service.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error('error during shutdown', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

void main();

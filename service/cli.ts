#!/usr/bin/env node
/**
 * `presence-engine <command> [args]`: the package's command-line entry (its
 * `bin`). Commands are looked up in {@link COMMANDS}; adding one (e.g. the
 * offline `explain` / `inspect` tools) is one entry there.
 */
import { explain } from './explain-cli.js';
import { SERVE_USAGE, serve } from './serve.js';

interface Command {
  readonly summary: string;
  readonly run: (argv: readonly string[]) => Promise<number>;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  serve: { summary: 'run the reference presence service (HTTP)', run: serve },
  explain: { summary: 'why a user is in their state, read offline from a file log', run: explain },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: presence-engine <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun \`presence-engine <command> --help\` for a command's options.`;
}

export async function runCli(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const about = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
    if (name === 'help' && about !== undefined) return about.run(['--help']);
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`presence-engine: unknown command ${JSON.stringify(name)}\n\n${usage()}\n`);
    return 2;
  }
  return command.run(rest);
}

export { SERVE_USAGE };

// Exit explicitly: a stopped service may leave idle handles (keep-alive sockets of fetch) behind.
process.exit(await runCli(process.argv.slice(2)));

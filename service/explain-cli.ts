/**
 * `presence-engine explain --log <dir> <userId>`: why a user is in their
 * state, read offline from a file log's directory (no lock, no writes: safe
 * beside a running service). Newest step first, each with its cause and rule.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { explainUser, isPresenceError, parseConfigYaml, parseUserId, readLogDirectory, type Explanation, type PresenceConfig } from '../src/index.js';

export const EXPLAIN_USAGE = `usage: presence-engine explain --log <dir> [options] <userId>

Explain a user's presence from a file log, offline: the steps that made it,
newest first, each with its cause (input and device, origin server, module,
or the timer that fired) and the rule that decided it.

  --log <dir>          the log directory (log.path of the config)
  -c, --config <path>  homeserver.yaml: its timers name durations in the rules
  --since <position>   only steps after this log position
  --json               print the explanation as JSON
  -h, --help           this text`;

export async function explain(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: [...argv],
      options: { log: { type: 'string' }, config: { type: 'string', short: 'c' }, since: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${EXPLAIN_USAGE}\n`);
    return 2;
  }
  if (args.values.help === true) {
    process.stdout.write(`${EXPLAIN_USAGE}\n`);
    return 0;
  }
  const [user, ...extra] = args.positionals;
  const dir = args.values.log;
  if (dir === undefined || user === undefined || extra.length > 0) {
    process.stderr.write(`presence-engine explain: needs --log <dir> and one user id\n\n${EXPLAIN_USAGE}\n`);
    return 2;
  }
  const since = args.values.since === undefined ? undefined : Number(args.values.since);
  if (since !== undefined && !(Number.isSafeInteger(since) && since >= 0)) {
    process.stderr.write(`presence-engine explain: --since must be a log position (a whole number ≥ 0), got ${JSON.stringify(args.values.since)}\n`);
    return 2;
  }
  try {
    const userId = parseUserId(user);
    const config: PresenceConfig | undefined = args.values.config === undefined ? undefined : parseConfigYaml(readFileSync(args.values.config, 'utf8'));
    const log = readLogDirectory(dir);
    const x = explainUser(userId, log.entries, {
      readFrom: log.first,
      complete: log.first <= (since ?? 0),
      ...(since !== undefined ? { since } : {}),
      ...(config !== undefined ? { timers: config.timers } : {}),
    });
    process.stdout.write(args.values.json === true ? `${JSON.stringify(x, null, 2)}\n` : render(x));
    return 0;
  } catch (error) {
    if (!isPresenceError(error) && !(error instanceof Error && 'code' in error)) throw error;
    process.stderr.write(`presence-engine explain: ${(error as Error).message}\n`);
    return 1;
  }
}

function render(x: Explanation): string {
  const lines = [`${x.userId}: ${x.state ?? 'no step in the log'} (${x.steps.length} step(s) read after log position ${x.readFrom}, newest first)`];
  if (!x.complete) lines.push(`older history is not in the log any more (it starts after position ${x.readFrom}; earlier steps were compacted into snapshots)`);
  for (const s of x.steps) {
    const change = s.from === s.to ? (s.to ?? '?') : `${s.from ?? '?'} → ${s.to ?? '?'}`;
    const status = s.statusMsg === undefined ? '' : ` [status ${JSON.stringify(s.statusMsg)}]`;
    const told = s.streamId === undefined ? '' : ` (notified, stream ${s.streamId})`;
    lines.push(`#${s.position}  ${new Date(s.at).toISOString()}  ${change.padEnd(24)} ${s.rule}${status}${told}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Helpers for the appservice tests: a bridge process built on the real
 * appservice framework (fixtures/bridge.mjs), its received events, and a
 * registration file pointing at it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const bridgeScript = fileURLToPath(new URL('./fixtures/bridge.mjs', import.meta.url));
export const routerFixture = fileURLToPath(new URL('./fixtures/route-to-bridge.ts', import.meta.url));

export const HS_TOKEN = 'hs-token-for-tests-0123456789';

export interface Bridge {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  readonly exited: Promise<void>;
}

export interface ReceivedPresence {
  readonly type: string;
  readonly sender: string;
  readonly content: { readonly presence: string; readonly status_msg?: string };
}

/** Start the bridge process; resolves once it listens. */
export function startBridge(outFile: string, port = 0, hsToken = HS_TOKEN): Promise<Bridge> {
  const child = spawn(process.execPath, [bridgeScript, hsToken, outFile, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bridge did not start within 20 s:\n${out}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      const m = /bridge listening on (\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        const p = Number(m[1]);
        resolve({ child, port: p, url: `http://127.0.0.1:${p}`, exited });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`bridge exited before listening:\n${out}`));
    });
  });
}

/** Every m.presence event the bridge wrote, in arrival order. */
export function received(outFile: string): ReceivedPresence[] {
  if (!existsSync(outFile)) return [];
  return readFileSync(outFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ReceivedPresence);
}

/** Write a registration YAML for the bridge; returns its path. */
export function writeRegistration(dir: string, url: string, extra: Record<string, unknown> = {}): string {
  const path = join(dir, `registration-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    path,
    stringify({
      id: 'irc-bridge',
      url,
      as_token: 'as-token-for-tests-0123456789',
      hs_token: HS_TOKEN,
      sender_localpart: 'ircbot',
      namespaces: { users: [{ regex: '@irc_.*:test\\.local', exclusive: true }], aliases: [], rooms: [] },
      'de.sorunome.msc2409.push_ephemeral': true,
      ...extra,
    }),
  );
  return path;
}

/** Poll `check` until it returns true (bounded). */
export async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

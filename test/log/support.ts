/** Helpers shared by the log tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineSnapshot } from '../../src/engine.js';

/** A fresh temporary directory and its clean-up. */
export function tempDir(prefix = 'presence-log-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An engine snapshot in a canonical order, for comparing engine states. */
export function canonical(s: EngineSnapshot): unknown {
  const byKey = <T extends readonly unknown[]>(a: readonly T[]) => [...a].sort((x, y) => String(x[0]).localeCompare(String(y[0])));
  return {
    position: s.position,
    streamId: s.streamId,
    users: byKey(s.users),
    rooms: byKey(s.rooms.map(([r, m]) => [r, [...m].sort()] as const).filter(([, m]) => m.length > 0)),
    fullRequests: byKey(s.fullRequests),
  };
}

/**
 * Bundle a child-process fixture with esbuild (a dependency of tsx) into one
 * file run by plain node: starting through `--import tsx` takes seconds.
 * Returns the node arguments (tsx as a fallback).
 */
export async function bundledFixture(entry: string, outDir: string): Promise<string[]> {
  try {
    const esbuild = (await import('esbuild')) as typeof import('esbuild');
    const outfile = join(outDir, 'fixture.mjs');
    esbuild.buildSync({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      logLevel: 'error',
      banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    });
    return [outfile];
  } catch {
    return ['--import', 'tsx', entry];
  }
}

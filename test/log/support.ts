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

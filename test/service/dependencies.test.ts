/**
 * Dependencies fit for purpose: ioredis is reached only through
 * `presence-engine/redis` (it is an optional peer dependency), and every
 * runtime dependency is imported by the code the package ships.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
};

/** Every module reachable from `entry` by static imports (relative ones followed), and the packages they import. */
function graph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    // Static imports and re-exports, including `import type` (typings count for consumers too).
    for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)) {
      const spec = (m[1] ?? m[2]) as string;
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
        visit(existsSync(target) ? target : resolve(dirname(file), spec));
      } else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string));
    }
    // Files served from an installed package at run time (the dashboard's uPlot) are looked up, not imported.
    for (const m of text.matchAll(/require\.resolve\(['"]([^'"/]+)\//g)) packages.add(m[1] as string);
  };
  visit(entry);
  return { files, packages };
}

describe('package dependencies', () => {
  it('ioredis is an optional peer, imported only from the presence-engine/redis graph', () => {
    expect(pkg.dependencies.ioredis).toBeUndefined();
    expect(pkg.peerDependencies?.ioredis).toBeDefined();
    expect(pkg.peerDependenciesMeta?.ioredis?.optional).toBe(true);
    for (const entry of ['src/index.ts', 'src/testing/index.ts', 'service/cli.ts']) {
      expect([...graph(join(root, entry)).packages], entry).not.toContain('ioredis');
    }
    expect([...graph(join(root, 'src/hosting/redis-node.ts')).packages]).toContain('ioredis');
  });

  it('every runtime dependency is used by the shipped code', () => {
    const used = new Set<string>();
    for (const entry of ['src/index.ts', 'src/testing/index.ts', 'src/hosting/redis-node.ts', 'service/cli.ts']) for (const p of graph(join(root, entry)).packages) used.add(p);
    for (const dep of Object.keys(pkg.dependencies)) expect([...used], dep).toContain(dep);
  });
});

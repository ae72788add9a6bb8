/**
 * The layer rules of `npm run lint` (.dependency-cruiser.cjs) catch planted
 * violations: a small tree with the project's folder names is cruised with the
 * real config, once clean and once with each kind of upward import planted.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const depcruise = join(root, 'node_modules', '.bin', 'depcruise');
const dirs: string[] = [];

/** A tree of files (path → content) with the project's config, cruised; returns exit code and output. */
function cruise(files: Record<string, string>): { code: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'layers-'));
  dirs.push(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  cpSync(join(root, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }));
  const roots = [...new Set(Object.keys(files).map((f) => f.split('/')[0] as string))];
  const r = spawnSync(depcruise, [...roots, '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const CLEAN: Record<string, string> = {
  'src/errors.ts': 'export class E extends Error {}\n',
  'src/domain/ids.ts': "import { E } from '../errors.js';\nexport const x = E;\n",
  'streams/s.ts': "import { x } from '../src/domain/ids.js';\nexport const s = x;\n",
  'src/log/l.ts': "import { x } from '../domain/ids.js';\nexport const l = x;\n",
  'src/engine/part.ts': "import { l } from '../log/l.js';\nimport { s } from '../../streams/s.js';\nexport const p = [l, s];\n",
  'src/engine.ts': "import { p } from './engine/part.js';\nexport const engine = p;\n",
  'src/hosting/h.ts': "import { engine } from '../engine.js';\nexport const h = engine;\n",
  'service/main.ts': "import { h } from '../src/hosting/h.js';\nexport const m = h;\n",
};

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('layer rules', () => {
  it('accept a tree whose imports all point down', () => {
    const r = cruise(CLEAN);
    expect(r.out).not.toMatch(/error/);
    expect(r.code).toBe(0);
  }, 60_000);

  it.each([
    ['domain-is-pure', 'src/domain/bad.ts', "import { engine } from '../engine.js';\nimport { readFileSync } from 'node:fs';\nexport const b = [engine, readFileSync];\n"],
    ['adapters-below-engine', 'src/log/bad.ts', "import { engine } from '../engine.js';\nexport const b = engine;\n"],
    ['machines-streams-below-adapters', 'streams/bad.ts', "import { l } from '../src/log/l.js';\nexport const b = l;\n"],
    ['parts-below-facade', 'src/engine/bad.ts', "import { engine } from '../engine.js';\nexport const b = engine;\n"],
    ['library-below-service', 'src/hosting/bad.ts', "import { m } from '../../service/main.js';\nexport const b = m;\n"],
  ])('fail with %s on a planted upward import', (rule, path, content) => {
    const r = cruise({ ...CLEAN, [path]: content });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(rule);
  }, 60_000);

  it('fail on an import circle', () => {
    const r = cruise({ ...CLEAN, 'src/log/l.ts': "import { c } from './c.js';\nexport const l = c;\n", 'src/log/c.ts': "import { l } from './l.js';\nexport const c = () => l;\n" });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('no-circular');
  }, 60_000);
});

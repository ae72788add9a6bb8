/**
 * docs/modules.md's restore/inspect/rules and explain examples run as written
 * (package imports pointed at this checkout's sources), and print what the
 * comments under them say they print.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const doc = readFileSync(join(root, 'docs', 'modules.md'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'presence-modules-doc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const entry: Record<string, string> = { 'presence-engine': 'src/index.ts', 'presence-engine/testing': 'src/testing/index.ts', 'presence-engine/rules': 'src/rules.ts' };

/** The first ```ts block after `heading`. */
function block(heading: string): string {
  const at = doc.indexOf(`\n${heading}\n`);
  expect(at, `docs/modules.md has no heading ${heading}`).toBeGreaterThanOrEqual(0);
  const m = /```ts\n([\s\S]*?)```/.exec(doc.slice(at));
  expect(m, `no ts block under ${heading}`).not.toBeNull();
  return (m as RegExpExecArray)[1] as string;
}

/** Run `code` with tsx; return what it printed and the `// ` comment lines that follow each console.log. */
function run(name: string, code: string): { out: string; promised: string[] } {
  let source = code;
  for (const [spec, file] of Object.entries(entry)) source = source.replaceAll(`from '${spec}'`, `from '${pathToFileURL(join(root, file)).href}'`);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  writeFileSync(join(dir, `${name}.ts`), source);
  const out = execFileSync(join(root, 'node_modules', '.bin', 'tsx'), [`${name}.ts`], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  const lines = code.split('\n');
  const promised: string[] = [];
  lines.forEach((l, i) => {
    const next = lines[i + 1];
    if (l.trimStart().startsWith('console.log(') && next?.startsWith('// ')) promised.push(next.slice(3));
  });
  return { out, promised };
}

describe('docs/modules.md examples', () => {
  it('restore, inspect and the rules: runs and prints what its comments say', () => {
    const { out, promised } = run('restore', block('### Restore, inspect and the rules'));
    expect(promised.length).toBe(2);
    const printed = out.trim().split('\n');
    expect(printed).toEqual(promised);
  });

  it('explain with recorded deliveries: runs and prints what its comments say', () => {
    const { out, promised } = run('explain', block('### Explain: why is a user in their state?'));
    expect(promised.length).toBe(2);
    expect(out.replace(/\s+/g, ' ').trim()).toBe(promised.join(' ').replace(/\s+/g, ' ').trim());
  });
});

/**
 * The README's embedding example runs as written: its first TypeScript block
 * (under "Embedding") is extracted and run with tsx next to the README's
 * minimal homeserver.yaml (under "Configuration"). The only change is the
 * package import, pointed at this checkout's sources.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'presence-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The first fenced block of `lang` after the heading `heading`. */
function block(heading: string, lang: string): string {
  const at = readme.indexOf(`\n${heading}\n`);
  expect(at, `README has no heading ${heading}`).toBeGreaterThanOrEqual(0);
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(readme.slice(at));
  expect(m, `no \`\`\`${lang} block under ${heading}`).not.toBeNull();
  return (m as RegExpExecArray)[1] as string;
}

describe('README', () => {
  it('states that the package is ESM-only', () => {
    expect(readme).toMatch(/ESM-only/);
  });

  it('the embedding example runs as written', () => {
    const code = block('## Embedding', 'ts');
    expect(code).toContain("from 'presence-engine'");
    writeFileSync(join(dir, 'homeserver.yaml'), block('## Configuration', 'yaml'));
    // A user's project: ESM, as the package requires.
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    const source = pathToFileURL(join(root, 'src', 'index.ts')).href;
    writeFileSync(join(dir, 'example.ts'), code.replaceAll("from 'presence-engine'", `from '${source}'`));
    const out = execFileSync(join(root, 'node_modules', '.bin', 'tsx'), ['example.ts'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    // Bob's stream saw Alice come online with her status, and GET /presence answered it.
    expect(out).toMatch(/presence: 'online'/);
    expect(out).toContain("status_msg: 'hello'");
    expect(out).toContain('@alice:example.org');
  });
});

/**
 * examples/presence-engine.service stays in step with the package: it runs
 * the package's bin with `serve`, stops with SIGTERM, and (where
 * systemd-analyze is installed) parses without warnings.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const unitFile = join(root, 'examples', 'presence-engine.service');
const unit = readFileSync(unitFile, 'utf8');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; bin: Record<string, string> };
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('examples/presence-engine.service', () => {
  it('runs the package bin with serve and stops with SIGTERM', () => {
    const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
    const bin = (pkg.bin['presence-engine'] ?? '').replace(/^\.\//, '');
    expect(bin).not.toBe('');
    expect(exec).toContain(`node_modules/${pkg.name}/${bin} serve `);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
    expect(unit).toMatch(/^TimeoutStopSec=\d+$/m);
    // systemd does not allow comments after a value.
    for (const line of unit.split('\n')) if (/^[A-Za-z]+=/.test(line)) expect(line, line).not.toMatch(/\s#/);
  });

  it.runIf(hasAnalyze)('parses without warnings (systemd-analyze verify)', () => {
    const r = spawnSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8' });
    // Only report problems with this unit (verify may also mention the host's units).
    const ours = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('presence-engine.service'));
    expect(ours).toEqual([]);
  });
});

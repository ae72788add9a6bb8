/**
 * The page's files: the hand-written ES modules in the package's `dashboard/`
 * folder and uPlot's prebuilt ES module and stylesheet, read from the
 * installed `uplot` package (a runtime dependency), so nothing is built at run
 * time or copied into the repository.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Files the page may load, by the name it uses under `/_presence/dashboard/assets/`. */
const PAGE_FILES = ['app.js', 'charts.js', 'panels.js', 'style.css'] as const;

function pageDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // service/dashboard/ from source; dist/service/dashboard/ once compiled
  for (const dir of [join(here, '..', '..', 'dashboard'), join(here, '..', '..', '..', 'dashboard')]) {
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  throw new Error(`the dashboard page files were not found next to ${here} (expected a dashboard/ folder with index.html in the package)`);
}

function uplotFile(name: string): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('uplot/package.json')), 'dist', name);
}

function typeOf(file: string): string {
  const dot = file.lastIndexOf('.');
  return TYPES[file.slice(dot)] ?? 'application/octet-stream';
}

/** Reads each file once, on first use. */
export class DashboardAssets {
  private readonly cache = new Map<string, Asset>();
  private readonly files: ReadonlyMap<string, string>;
  readonly indexPath: string;

  constructor() {
    const dir = pageDir();
    const files = new Map<string, string>();
    for (const f of PAGE_FILES) files.set(f, join(dir, f));
    files.set('uPlot.esm.js', uplotFile('uPlot.esm.js'));
    files.set('uPlot.min.css', uplotFile('uPlot.min.css'));
    this.files = files;
    this.indexPath = join(dir, 'index.html');
  }

  index(): Asset {
    return this.load('index.html', this.indexPath);
  }

  /** An asset by name, or undefined for names the page does not use. */
  get(name: string): Asset | undefined {
    const path = this.files.get(name);
    return path === undefined ? undefined : this.load(name, path);
  }

  private load(name: string, path: string): Asset {
    let a = this.cache.get(name);
    if (a === undefined) {
      a = { body: readFileSync(path), type: typeOf(path) };
      this.cache.set(name, a);
    }
    return a;
  }
}

// `npm start`: run the CLI in this one node process (so a signal to npm's
// child, or to npm itself, reaches the service). In a checkout with dev
// dependencies the TypeScript sources run through tsx; without them (after
// `npm ci --omit=dev`) the compiled dist/ is used.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/service/cli.js', import.meta.url);
let tsx;
try {
  tsx = await import('tsx/esm/api');
} catch {
  tsx = undefined;
}
if (tsx !== undefined) {
  tsx.register();
  await import('./cli.ts');
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write('npm start: neither tsx (a dev dependency) nor the compiled dist/service/cli.js is installed.\n' + 'Run `npm ci && npm start`, or `npm ci && npm run build` once and then `npm ci --omit=dev && npm start`.\n');
  process.exit(1);
}

// `npm run build`, after tsc: copy the files the compiled service reads at run time into dist/.
import { cpSync } from 'node:fs';

cpSync(new URL('../examples/homeserver.yaml', import.meta.url), new URL('../dist/examples/homeserver.yaml', import.meta.url));

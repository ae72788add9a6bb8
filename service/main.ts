/**
 * Kept for `tsx service/main.ts [args]`: the same as `presence-engine serve [args]`
 * (service/cli.ts is the entry point now).
 */
import { serve } from './serve.js';

process.exit(await serve(process.argv.slice(2)));

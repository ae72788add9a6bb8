/**
 * Where an appservice's delivered log position is kept between runs. The
 * service keeps one small JSON file per appservice next to the file log; a
 * memory log starts empty on every run, so it needs no file.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { LogError } from '../errors.js';

export interface AppservicePositionStore {
  /** The saved position, or undefined when none was saved yet. */
  load(): Promise<number | undefined>;
  save(position: number): Promise<void>;
  close?(): Promise<void>;
}

/** Positions in memory: for memory logs and tests. */
export class MemoryPositionStore implements AppservicePositionStore {
  position: number | undefined;
  constructor(position?: number) {
    this.position = position;
  }
  async load(): Promise<number | undefined> {
    return this.position;
  }
  async save(position: number): Promise<void> {
    this.position = position;
  }
}

const StateFileSchema = z.strictObject({ version: z.literal(1), appservice: z.string(), position: z.number().int().nonnegative() });

/**
 * One JSON file, replaced atomically (write a temporary file, rename). Saves
 * are coalesced: while one is being written, only the newest next position
 * is kept. A file lost in a crash costs a resend, never a loss.
 */
export class FilePositionStore implements AppservicePositionStore {
  private writing: Promise<void> | undefined;
  private next: number | undefined;

  constructor(
    readonly path: string,
    private readonly appservice: string,
  ) {}

  /** `<dir>/<id>.json`, with the id made safe for a file name. */
  static inDirectory(dir: string, appservice: string): FilePositionStore {
    return new FilePositionStore(join(dir, `${appservice.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`), appservice);
  }

  async load(): Promise<number | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new LogError(`cannot read the appservice position file ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      raw = undefined;
    }
    const r = StateFileSchema.safeParse(raw);
    if (!r.success || r.data.appservice !== this.appservice) {
      throw new LogError(`the appservice position file ${this.path} is damaged or belongs to another appservice; delete it to resend every user's current presence`);
    }
    return r.data.position;
  }

  save(position: number): Promise<void> {
    this.next = position;
    // Chained: each save runs after the previous write and writes the newest position (or nothing, if already written).
    const run = (this.writing ?? Promise.resolve()).catch(() => undefined).then(() => this.writeNext());
    this.writing = run;
    return run;
  }

  async close(): Promise<void> {
    await this.writing?.catch(() => undefined);
  }

  private async writeNext(): Promise<void> {
    const position = this.next;
    if (position === undefined) return;
    this.next = undefined;
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ version: 1, appservice: this.appservice, position })}\n`);
    await rename(tmp, this.path);
  }
}

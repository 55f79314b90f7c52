/**
 * Durable control-plane state: one JSON file per resource under
 * `<dataDir>/sagemaker/<collection>/<name>.json`. Each write goes to a temporary
 * file that is renamed over the old one, so a crash leaves either the old or the
 * new document, never half of one. Writes to one file are serialized so that an
 * older state can never overwrite a newer one.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export class JsonStateStore {
  private readonly pending = new Map<string, Promise<void>>();
  private sequence = 0;

  constructor(
    readonly root: string,
    /** Told about a document that cannot be read; it is skipped so one bad file cannot stop startup. */
    private readonly onUnreadable: (file: string, error: Error) => void = () => {},
  ) {}

  async list<T>(collection: string): Promise<T[]> {
    const dir = path.join(this.root, collection);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const out: T[] = [];
    for (const name of names.sort()) {
      if (!name.endsWith('.json')) continue; // leftovers of an interrupted write end in .tmp-*
      const file = path.join(dir, name);
      try {
        out.push(JSON.parse(await readFile(file, 'utf8')) as T);
      } catch (error) {
        this.onUnreadable(file, error as Error);
      }
    }
    return out;
  }

  put(collection: string, key: string, document: unknown): Promise<void> {
    const text = `${JSON.stringify(document, null, 2)}\n`;
    return this.enqueue(collection, key, async (file) => {
      await mkdir(path.dirname(file), { recursive: true });
      const temporary = `${file}.tmp-${process.pid}-${++this.sequence}`;
      try {
        await writeFile(temporary, text);
        await rename(temporary, file);
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      }
    });
  }

  delete(collection: string, key: string): Promise<void> {
    return this.enqueue(collection, key, (file) => rm(file, { force: true }));
  }

  /** Resolves once every write issued so far has reached the disk. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.pending.values()]);
  }

  private enqueue(collection: string, key: string, write: (file: string) => Promise<void>): Promise<void> {
    const file = path.join(this.root, collection, `${encodeURIComponent(key)}.json`);
    const previous = this.pending.get(file) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => write(file));
    this.pending.set(file, next);
    void next
      .finally(() => {
        if (this.pending.get(file) === next) this.pending.delete(file);
      })
      .catch(() => {});
    return next;
  }
}

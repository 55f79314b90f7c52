import { type BackendChannel, BackendError } from '../gateway/backend.js';
import { EMPTY_CATALOG, loadMlCatalog, type MlCatalog } from './catalog.js';

const BUILTIN_NAMES = [
  'invoke_endpoint',
  'detect_sentiment',
  'apg_enable_function_migration',
  'aws_ml',
  'query_export_to_s3',
  // (Statements naming the export's schemas are looked at too: in a database without the extension, their error
  // gets the hint to create it.)
  'aws_s3',
  'aws_commons',
];
async function seesLatestCommits(backend: BackendChannel): Promise<boolean> {
  const result = await backend.query("SELECT current_setting('transaction_isolation')");
  return result.rows[0]?.[0] === 'read committed';
}

/**
 * An object the catalog read listed was dropped by another session before it
 * was read further (PostgreSQL's functions such as pg_get_viewdef look it up
 * anew and fail with an internal error): read again.
 */
function droppedMeanwhile(error: unknown): boolean {
  return (
    error instanceof BackendError &&
    error.code === 'XX000' &&
    /could not open relation with OID|cache lookup failed/.test(error.message)
  );
}

const CATALOG_READ_ATTEMPTS = 5;

/**
 * How long a catalog read waits for a lock (pg_get_viewdef locks the view):
 * another session's uncommitted DDL on a view must not hold up every
 * statement of this one. Past it the catalog read before is used, and read
 * again by the next statement.
 */
const CATALOG_LOCK_TIMEOUT_MS = 200;
/** After a read held up so, the catalog before serves this long before another read is tried. */
const HELD_CATALOG_SERVES_MS = 2_000;
const LOCK_NOT_AVAILABLE = '55P03';

/** Catalogs older than this are re-read (catches DDL that did not pass through this gateway). */
const MAX_AGE_MS = 30_000;

function namePattern(names: Iterable<string>): RegExp {
  // (A name with a double quote is written with it doubled: `"Odd""Name"`. One with characters beyond ASCII is
  // also looked for as its UTF-8 bytes read as latin1, as the session reads a message's text for this test.)
  const written = [...BUILTIN_NAMES, ...names]
    .flatMap((n) => (n.includes('"') ? [n, n.replaceAll('"', '""')] : [n]))
    .flatMap((n) => (Buffer.byteLength(n) > n.length ? [n, Buffer.from(n, 'utf8').toString('latin1')] : [n]));
  const escaped = [...new Set(written)].map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(escaped.join('|'), 'i');
}

/** A catalog and the name pattern that decides whether a statement is worth parsing. */
export interface CatalogView {
  catalog: MlCatalog;
  pattern: RegExp;
}

interface Entry extends CatalogView {
  loadedAt: number;
  /** No DDL was seen since it was read (else it is read again by the next statement that needs it). */
  current: boolean;
}

const fresh = (entry: Entry) => entry.current && Date.now() - entry.loadedAt < MAX_AGE_MS;

/**
 * Per database: which user functions and views wrap ML calls, and the name
 * pattern that decides whether a statement is worth parsing. Shared by all
 * sessions of a database; refreshed after DDL seen by the gateway and when old.
 */
export class CatalogRegistry {
  private readonly entries = new Map<string, Entry>();
  /** Per database, how often it was invalidated: a read overtaken by an invalidation is not fresh. */
  private readonly invalidations = new Map<string, number>();
  /** Databases whose catalog, only old, one session is reading again: the others use it meanwhile. */
  private readonly refreshing = new Set<string>();

  constructor(private readonly onRead: () => void = () => undefined) {}
  /**
   * The pattern for a database, or undefined when its catalog has not been
   * read since it may have changed or is old (then every statement is looked
   * at, and the first ML-looking one reads the catalog again). While one
   * session reads an old catalog again, the others go on with it.
   */
  pattern(database: string): RegExp | undefined {
    const entry = this.entries.get(database);
    if (!entry) return undefined;
    return fresh(entry) || (entry.current && this.refreshing.has(database)) ? entry.pattern : undefined;
  }

  invalidate(database: string): void {
    const entry = this.entries.get(database);
    if (entry) entry.current = false;
    this.invalidations.set(database, (this.invalidations.get(database) ?? 0) + 1);
  }

  /**
   * The catalog for a database, read on the given session when missing or
   * stale; `shared` is false for one read in a REPEATABLE READ or
   * SERIALIZABLE block's snapshot, too old to share.
   */
  async catalog(database: string, backend: BackendChannel): Promise<{ view: CatalogView; shared: boolean }> {
    const entry = this.entries.get(database);
    if (entry && fresh(entry)) return { view: entry, shared: true };
    // (An old catalog is read again by one session; the others use it meanwhile, neither waiting for that read
    // nor making their own.)
    if (entry?.current && this.refreshing.has(database)) return { view: entry, shared: true };
    const before = { view: entry ?? { catalog: EMPTY_CATALOG, pattern: namePattern([]) }, shared: true };
    // (Statements fail until the block ends.)
    if (backend.status === 'E') return before;
    if (backend.status === 'T' && !(await seesLatestCommits(backend))) {
      const view = await this.readOn(backend);
      return view ? { view, shared: false } : before;
    }
    const invalidations = this.invalidations.get(database) ?? 0;
    this.refreshing.add(database);
    let view: CatalogView | undefined;
    try {
      view = await this.readOn(backend);
    } finally {
      this.refreshing.delete(database);
    }
    if (!view) {
      // (Until then, other statements need not wait for that lock too; DDL seen meanwhile still invalidates it.)
      if (entry && (this.invalidations.get(database) ?? 0) === invalidations) {
        entry.current = true;
        entry.loadedAt = Date.now() - MAX_AGE_MS + HELD_CATALOG_SERVES_MS;
      }
      return before;
    }
    // DDL seen while it was read may be missing from it: kept, but read again by the next statement.
    const current = (this.invalidations.get(database) ?? 0) === invalidations;
    this.entries.set(database, { ...view, loadedAt: Date.now(), current });
    return { view, shared: true };
  }

  /**
   * The catalog as one session sees it, not shared: a session whose block
   * ran function or view DDL sees its own uncommitted definitions, which
   * other sessions must not use (they would batch a body that does not exist
   * for them, or that a rollback undoes). Undefined when another session's
   * lock held it up (see CATALOG_LOCK_TIMEOUT_MS), or views it lists keep
   * being dropped before it reads them.
   */
  async readOn(backend: BackendChannel): Promise<CatalogView | undefined> {
    this.onRead();
    // Read in the client's transaction (it sees its own DDL), in a block under a savepoint, otherwise in a
    // transaction of the gateway's, with a short lock_timeout that the end of either takes back. (Not with a
    // search_path of its own: PostgreSQL 18 reports search_path to the client. loadMlCatalog reads through
    // aws_ml.catalog_rows, whose own SET clause is over before the client hears of it.)
    for (let attempt = 1; ; attempt++) {
      const inBlock = backend.status === 'T';
      await backend.query(
        `${inBlock ? 'SAVEPOINT aws_ml_catalog' : 'BEGIN'}; SET LOCAL lock_timeout = ${CATALOG_LOCK_TIMEOUT_MS}`,
      );
      let failure: unknown;
      let catalog: MlCatalog | undefined;
      try {
        catalog = await loadMlCatalog(backend);
      } catch (error) {
        failure = error;
      }
      const held = failure instanceof BackendError && failure.code === LOCK_NOT_AVAILABLE;
      if (failure && !held && !droppedMeanwhile(failure)) {
        // (In a block it is left failed, as a failed statement leaves it.)
        if (!inBlock) await backend.query('ROLLBACK');
        throw failure;
      }
      // (Nothing was written: the read's own transaction ends as a read-only statement's does.)
      await backend.query(
        inBlock
          ? 'ROLLBACK TO SAVEPOINT aws_ml_catalog; RELEASE SAVEPOINT aws_ml_catalog'
          : failure
            ? 'ROLLBACK'
            : 'COMMIT',
      );
      if (catalog) return { catalog, pattern: namePattern(catalog.names) };
      // (A REPEATABLE READ block's snapshot keeps listing a view dropped since: reading again does not help.)
      if (held || attempt === CATALOG_READ_ATTEMPTS) return undefined;
    }
  }
}

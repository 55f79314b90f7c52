import type { Config } from '../config/index.js';
import { BackendError } from '../gateway/backend.js';
import type { BoundStatement, StatementHandler } from '../gateway/interceptor.js';
import type { SessionControl } from '../gateway/session.js';
import { type AstNode, clone, deparse, functionName, nodeType, parseExpression, walk } from '../sql/ast.js';
import { createObjectStore } from '../storage/index.js';
import { ObjectNotFoundError, type ObjectStore, ObjectStoreError, validBucketName } from '../storage/object-store.js';
import { SplitUpload } from '../storage/split-upload.js';
import { SqlError, SqlState } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { shellWord } from '../util/shell.js';
import { copyableQuery, parseCopyOptions } from './copy-options.js';

const NAME = 'query_export_to_s3';
const SCHEMA = 'aws_s3';

/** Statements whose calls the gateway carries out (not CREATE VIEW/FUNCTION, PREPARE, EXPLAIN…, whose calls run later). */
const RUNNABLE = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** The arguments of one call, after PostgreSQL picked the form and applied defaults. */
export interface ExportArguments {
  query: string | null;
  bucket: string | null;
  filePath: string | null;
  region: string | null;
  options: string | null;
  kmsKey: string | null;
}

export interface ExportResult {
  rows: number;
  files: number;
  bytes: number;
}

export interface QueryExportContext {
  config: Config;
  logger: Logger;
  /** Defaults to the store the configuration names. */
  store?: ObjectStore;
}

function isExportCall(node: AstNode): boolean {
  if (nodeType(node) !== 'FuncCall') return false;
  const name = functionName(node.FuncCall);
  return (name.length === 2 && name[0] === SCHEMA && name[1] === NAME) || (name.length === 1 && name[0] === NAME);
}

/** Whether an argument reads a column of the statement around the call (outside subqueries of its own). */
function readsOuterColumns(args: AstNode[]): boolean {
  let found = false;
  walk(args, (node) => {
    if (found || nodeType(node) === 'SubLink') return false;
    if (nodeType(node) === 'ColumnRef') {
      found = true;
      return false;
    }
    return undefined;
  });
  return found;
}

interface CallSite {
  node: AstNode;
  holder: AstNode | AstNode[];
  key: string | number;
  qualified: boolean;
}

function callSites(stmt: AstNode): CallSite[] {
  const sites: CallSite[] = [];
  walk(stmt, (node, parent, key) => {
    if (!isExportCall(node) || parent === undefined || key === undefined) return undefined;
    const call = node.FuncCall;
    // Forms no real call would accept (aggregate/window syntax) are left to PostgreSQL to reject.
    if (call.agg_star || call.agg_distinct || call.over || call.agg_order || call.agg_filter || call.func_variadic) {
      return false;
    }
    sites.push({ node, holder: parent, key, qualified: functionName(call).length === 2 });
    return false;
  });
  return sites;
}

/**
 * `aws_s3.query_export_to_s3(...)` in a client's statement: the gateway runs
 * the export on the client's session and hands PostgreSQL the statement with
 * the call replaced by its result row.
 */
export function queryExportHandler(context: QueryExportContext): StatementHandler {
  let store = context.store;
  const objects = () => {
    store ??= createObjectStore(context.config);
    return store;
  };
  return {
    names: [NAME],
    accepts(stmt: AstNode): boolean {
      return RUNNABLE.has(nodeType(stmt) ?? '') && callSites(stmt).length > 0;
    },
    async prepare(control: SessionControl, stmt: AstNode, bound?: BoundStatement): Promise<string> {
      const statement = clone(stmt);
      let sites = callSites(statement);
      if (sites.some((s) => !s.qualified) && !(await unqualifiedIsOurs(control))) {
        sites = sites.filter((s) => s.qualified);
      }
      // Function calls in FROM keep the name a real call would give them.
      walk(statement, (node) => {
        const range = node.RangeFunction;
        if (!range || range.alias || range.functions?.length !== 1) return undefined;
        const first = range.functions[0].List?.items?.[0];
        if (sites.some((s) => s.node === first)) range.alias = { aliasname: NAME };
        return undefined;
      });
      for (const site of sites) {
        const args = site.node.FuncCall.args ?? [];
        if (readsOuterColumns(args)) {
          throw new SqlError(
            SqlState.featureNotSupported,
            'the arguments of aws_s3.query_export_to_s3 cannot refer to columns of the statement that calls it',
            'pgsage carries out each call once, before the statement runs.',
            'Pass constants or expressions (subqueries are fine), e.g. one call per export.',
          );
        }
        const resolver = clone(site.node);
        resolver.FuncCall.funcname = [{ String: { sval: SCHEMA } }, { String: { sval: '_export_arguments' } }];
        const resolve = `SELECT * FROM ${deparse(resolver)}`;
        const { rows } = await (bound
          ? control.backend.queryParams(resolve, bound.values, bound.types, bound.formats)
          : control.backend.query(resolve)
        ).catch((error) => {
          throw asCallError(error);
        });
        const [query, bucket, filePath, region, options, kmsKey] = rows[0];
        const result = await runExport(
          control,
          { query, bucket, filePath, region, options, kmsKey },
          context.config,
          objects(),
          context.logger,
        );
        const replacement = parseExpression(
          `${SCHEMA}._export_result(${result.rows}::bigint, ${result.files}::bigint, ${result.bytes}::bigint)`,
        );
        (site.holder as Record<string | number, AstNode>)[site.key] = replacement;
        // `SELECT aws_s3.query_export_to_s3(...)` names its column after the function.
        const holder = site.holder as AstNode;
        if (
          site.key === 'val' &&
          !Array.isArray(holder) &&
          holder.name === undefined &&
          isResTarget(statement, holder)
        ) {
          holder.name = NAME;
        }
      }
      return deparse(statement);
    },
  };
}

/** PostgreSQL's error for the resolver, worded for the function the client called. */
function asCallError(error: unknown): unknown {
  if (!(error instanceof BackendError) || error.code !== '42883') return error;
  const name = (text: string | undefined) => text?.replaceAll('_export_arguments', NAME);
  return new SqlError(error.code, name(error.fields.M) ?? '', name(error.fields.D), name(error.fields.H));
}

function isResTarget(statement: AstNode, candidate: AstNode): boolean {
  let found = false;
  walk(statement, (node) => {
    if (found) return false;
    if (node.ResTarget === candidate) found = true;
    return undefined;
  });
  return found;
}

/** An unqualified `query_export_to_s3(...)` is ours only if every function of that name on the search path is. */
async function unqualifiedIsOurs(control: SessionControl): Promise<boolean> {
  const { rows } = await control.backend.query(
    `SELECT n.nspname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      WHERE p.proname = '${NAME}' AND pg_catalog.pg_function_is_visible(p.oid)`,
  );
  return rows.length > 0 && rows.every((r) => r[0] === SCHEMA);
}

function required(value: string | null, what: string): string {
  if (value === null) {
    throw new SqlError(SqlState.nullValueNotAllowed, `${what} of aws_s3.query_export_to_s3 must not be null`);
  }
  return value;
}

/** Maps object-store failures to SQL errors a user can act on. */
export function storeError(error: unknown, store: ObjectStore, bucket: string, key: string, config: Config): unknown {
  if (error instanceof ObjectNotFoundError && error.key === undefined) return missingBucket(store, bucket, config);
  if (error instanceof ObjectStoreError) {
    switch (error.reason) {
      case 'unreachable':
        return new SqlError(
          SqlState.ioError,
          `could not export to s3://${bucket}/${key}: ${error.message}`,
          undefined,
          'Check that the object store is running and that storage.endpoint in the pgsage configuration points to it.',
        );
      case 'access-denied':
        return new SqlError(
          SqlState.insufficientPrivilege,
          `could not export to s3://${bucket}/${key}: ${error.message}`,
        );
      case 'invalid':
        return new SqlError(SqlState.invalidParameterValue, error.message);
      case 'unsupported':
        return new SqlError(SqlState.featureNotSupported, error.message);
      default:
        return new SqlError(SqlState.ioError, `could not export to s3://${bucket}/${key}: ${error.message}`);
    }
  }
  return error;
}

function missingBucket(store: ObjectStore, bucket: string, config: Config): SqlError {
  // `pgsage bucket create` run elsewhere uses ./.pgsage there, not this server's store: the hint names the server's
  // data directory (with storage.root set, only the server's configuration file finds the store).
  const where =
    store.kind !== 'local'
      ? ''
      : config.storage.root === undefined
        ? ` --data-dir ${shellWord(config.dataDir)}`
        : ' --config <the configuration file pgsage runs with>';
  return new SqlError(
    SqlState.undefinedObject,
    `bucket "${bucket}" does not exist`,
    store.kind === 'local'
      ? `The local object store is the directory ${store.location}.`
      : `The object store is ${store.location}.`,
    `Create it first, e.g. with: pgsage bucket create ${bucket}${where}`,
  );
}

/**
 * One export: validates the arguments, runs `COPY (query) TO STDOUT` on the
 * client's session and streams its output into the object store, pausing
 * PostgreSQL while the store is behind. On any failure the objects already
 * written are removed, so nothing looks like a finished export (unless the S3
 * role may not delete them: s3:DeleteObject).
 */
export async function runExport(
  control: SessionControl,
  args: ExportArguments,
  config: Config,
  store: ObjectStore,
  logger: Logger,
): Promise<ExportResult> {
  const queryText = required(args.query, 'query');
  const bucket = required(args.bucket, 'bucket');
  const key = required(args.filePath, 'file_path');
  const region = args.region ?? config.region;
  if (region !== config.region) {
    throw new SqlError(
      SqlState.invalidParameterValue,
      `cannot export to region ${region}: the bucket must be in the cluster's region ${config.region}`,
      undefined,
      `Pass '${config.region}' (or NULL) as the region, or set region in the pgsage configuration.`,
    );
  }
  if (!validBucketName(bucket)) {
    throw new SqlError(SqlState.invalidParameterValue, `invalid bucket name: "${bucket}"`);
  }
  if (key === '' || key.endsWith('/')) {
    throw new SqlError(SqlState.invalidParameterValue, `invalid file_path for an export: "${key}"`);
  }
  if (args.kmsKey !== null && store.kind === 'local') {
    throw new SqlError(
      SqlState.featureNotSupported,
      'kms_key needs an S3 object store: the local object store does not encrypt objects',
    );
  }
  const options = parseCopyOptions(args.options);
  const query = copyableQuery(queryText);

  let bucketPresent: boolean;
  try {
    bucketPresent = await store.bucketExists(bucket);
  } catch (error) {
    throw storeError(error, store, bucket, key, config);
  }
  if (!bucketPresent) throw missingBucket(store, bucket, config);

  const upload = new SplitUpload(store, bucket, key, {
    partSizeBytes: config.storage.partSizeBytes,
    kmsKeyId: args.kmsKey ?? undefined,
    contentType: options.format === 'csv' ? 'text/csv' : options.format === 'text' ? 'text/plain' : undefined,
  });
  const flow = control.backend.flowControl;
  let paused = false;
  const resume = () => {
    if (!paused) return;
    paused = false;
    flow?.resume();
  };
  upload.on('drain', resume);
  upload.on('failed', resume);

  let rows: number;
  try {
    rows = await control.backend.copyOut(`COPY (\n${query}\n) TO STDOUT${options.clause}`, (payload) => {
      // After a failed upload the rest of the COPY is read and dropped.
      if (upload.failed) return;
      if (!upload.write(payload) && flow && !paused) {
        paused = true;
        flow.pause();
      }
    });
  } catch (error) {
    resume();
    await upload.abort(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
  resume();
  try {
    if (upload.failed) throw upload.failed;
    if (control.signal.aborted) {
      throw new SqlError(SqlState.queryCanceled, 'canceling statement due to user request');
    }
    const result = await upload.finish();
    logger.debug({ bucket, key, rows, files: result.files, bytes: result.bytes }, 'query exported');
    return { rows, files: result.files, bytes: result.bytes };
  } catch (error) {
    await upload.abort(error instanceof Error ? error : new Error(String(error)));
    if (error instanceof BackendError || error instanceof SqlError) throw error;
    throw storeError(error, store, bucket, key, config);
  }
}

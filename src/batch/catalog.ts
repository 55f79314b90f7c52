import type { BackendChannel } from '../gateway/backend.js';
import { type AstNode, callsFunction, functionName, inner, nodeType, operatorName, some, walk } from '../sql/ast.js';
import { parse } from '../sql/parser.js';
import { quoteLiteralAnyStrings } from '../sql/quote.js';
import { CHANGING_FUNCTIONS, ROW_ONLY_FUNCTIONS } from './pure-functions.js';

/** A user-defined LANGUAGE SQL function whose body calls an ML function (an Aurora "wrapper"). */
export interface WrapperFunction {
  schema: string;
  name: string;
  argNames: string[];
  /** format_type of each input argument. */
  argTypes: string[];
  /** SQL of the defaults of the last `defaults.length` arguments. */
  defaults: string[];
  returnType: string;
  /** The body's single output expression when the body is `SELECT <expr>` (what gets inlined), else undefined. */
  bodyExpression: AstNode | undefined;
  /** The function's OID, for privilege checks. */
  oid: string;
  /**
   * The version of its pg_proc row (xmin) when the catalog was read: a
   * statement that inlined it checks it still is (the body may have been
   * replaced on a connection the gateway does not see).
   */
  version: string;
  securityDefiner: boolean;
  /** STRICT (RETURNS NULL ON NULL INPUT): a NULL argument makes it NULL without running its body. */
  strict: boolean;
  /**
   * Other functions share its name: in its schema (an overload PostgreSQL
   * may pick by argument types), or only in other schemas (which
   * search_path may pick for an unqualified call).
   */
  namesakes?: 'same-schema' | 'other-schemas';
  /**
   * With namesakes in other schemas only, all of its argument types, names, kind and VARIADIC: their schemas.
   * PostgreSQL then calls, for an unqualified name, the one whose schema comes first on the search_path.
   */
  namesakeSchemas?: string[];
  owner: string;
}

/** A view or materialized view whose definition calls ML functions. */
export interface MlView {
  schema: string;
  name: string;
  kind: 'view' | 'matview';
  definition: string;
  /** A security_barrier view: PostgreSQL keeps conditions of the query reading it out of it. */
  securityBarrier: boolean;
  oid: string;
  /**
   * The definition names everything outside pg_catalog with its schema (read
   * through aws_ml.view_definition), so a statement may read it in place of
   * the view (see PlanOptions.inlineViews). Never for temp views.
   */
  qualified: boolean;
}

export interface MlCatalog {
  wrappers: WrapperFunction[];
  views: MlView[];
  /**
   * The parameter types a prepared statement's Parse declared (OIDs, 0 for
   * none), while that statement is planned: they decide which form a call
   * with a parameter argument has, as PostgreSQL's overload choice does.
   */
  paramTypes?: readonly number[];
  /**
   * The schemas an unqualified name is looked for in, in order, while a statement is planned: the session's
   * search_path as PostgreSQL last reported it. It picks among views, and wrappers of one signature, of one
   * name in several schemas (a schema per tenant); without it such a name is not looked into.
   */
  searchPath?: readonly string[];
  /** Every name whose mention makes a statement worth inspecting. */
  names: string[];
  /**
   * Names of functions that may change data: built-in ones with side effects,
   * and the database's own VOLATILE functions but LANGUAGE SQL ones made only
   * of queries calling none of these. Batch mode's argument queries would run
   * them a second time.
   */
  sideEffects?: ReadonlySet<string>;
  /** Names of operators whose function is one of those, and of types a cast to which runs one. */
  writingOperators?: ReadonlySet<string>;
  writingTypes?: ReadonlySet<string>;
  /**
   * Such a function runs where nothing names it: an implicit cast, or a
   * comparison operator (BETWEEN, sorting and joining use those unwritten).
   * Every statement then goes per row.
   */
  writersEverywhere?: boolean;
  /**
   * Names of relations whose reading runs such a function: views that call
   * one, tables with a row-level security policy that does.
   */
  relationsWithSideEffects?: ReadonlySet<string>;
  /**
   * Names of PostgreSQL's VOLATILE functions and of the database's own SQL
   * functions whose value changes from one call to the next (they reach
   * `random()` and the like, see CHANGING_FUNCTIONS), and of operators whose
   * function is one. An argument
   * query must not compute them again. (Views that call such functions are
   * not known: see docs/batch-mode.md, known limits.)
   */
  changingFunctions?: ReadonlySet<string>;
  changingOperators?: ReadonlySet<string>;
  /**
   * Names of functions that return sets (built-in and the database's own): a
   * call whose inputs use one is answered for each row the set makes, which
   * a join on the inputs cannot express.
   */
  setReturning?: ReadonlySet<string>;
  /**
   * A function of the database's own is named json_build_array: an
   * unqualified `json_build_array(…)` may then be PostgreSQL's choice of it
   * (an exact match of argument types beats the built-in VARIADIC "any").
   */
  packerShadowed?: boolean;
  /**
   * The installed invoke_endpoint answers a NULL input itself, so it can be
   * counted with a no-op call (a database that created the extension before
   * that change has the older body).
   */
  endpointNoOp?: boolean;
}

const ML_NAMES = ['invoke_endpoint', 'detect_sentiment'];
const ML_SCHEMAS = ['aws_sagemaker', 'aws_comprehend'];

/**
 * A SQL function's body as text: `prosrc`, or for a body in the SQL
 * standard's form (`RETURN expr`, `BEGIN ATOMIC … END`, kept parsed in
 * `prosqlbody`) PostgreSQL's own rendering of it (see bodySql).
 */
const FUNCTION_BODY = 'CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_catalog.pg_get_function_sqlbody(p.oid) END';

/**
 * The statements of a SQL function's body (see FUNCTION_BODY): `RETURN expr`
 * is `SELECT expr`, and `BEGIN ATOMIC … END` holds its statements.
 */
function bodySql(body: string): string {
  const trimmed = body.trim();
  const returned = /^RETURN\s/i.exec(trimmed);
  if (returned) return `SELECT ${trimmed.slice(returned[0].length)}`;
  const atomic = /^BEGIN\s+ATOMIC\b([\s\S]*)\bEND$/i.exec(trimmed);
  return atomic ? atomic[1] : body;
}

const quoteLiteralArray = (names: string[]) => `ARRAY[${names.map(quoteLiteralAnyStrings).join(',')}]::text[]`;

/**
 * SQL true when the relation `c` (a pg_class row) has a boolean reloption
 * turned on (`security_barrier`, `security_invoker`: `WITH (name)` or `= true`).
 */
export const reloptionOn = (option: string): string =>
  `EXISTS (SELECT 1 FROM unnest(c.reloptions) o WHERE o ~* '^${option}' AND o !~* '=(false|off|no|0)$')`;

/** Type names a cast in a body may use: built-in ones, as the parser leaves them unqualified. */
const BUILTIN_TYPES = new Set([
  'text',
  'float8',
  'float4',
  'int2',
  'int4',
  'int8',
  'numeric',
  'bool',
  'json',
  'jsonb',
  'date',
  'timestamp',
  'timestamptz',
  'interval',
  'uuid',
  'bytea',
]);

/**
 * Whether an expression computes the same whoever runs it and whatever the
 * search_path: its ML calls (schema-qualified, where `qualifiedMl`),
 * functions of pg_catalog named so whose value depends on their arguments
 * alone, and casts to built-in types. No subquery, no session value such as
 * `current_user`, no other function, and no operator or simple CASE: an
 * unqualified name, even of a built-in, may be a function or operator of the
 * database's own (one of exact argument types beats pg_catalog's that needs a
 * cast), which might ask who runs it or read what only some role may.
 */
function selfContained(body: AstNode, qualifiedMl: boolean): boolean {
  return !some(body, (node) => {
    const type = nodeType(node);
    if (type === 'SubLink' || type === 'SQLValueFunction' || type === 'A_Expr') return true;
    if (type === 'CaseExpr') return Boolean(node.CaseExpr.arg);
    if (type === 'FuncCall') {
      const name = functionName(node.FuncCall);
      const [schema, last] = name.length === 2 ? name : [undefined, name[0]];
      if (ML_NAMES.includes(last)) return qualifiedMl ? !ML_SCHEMAS.includes(schema ?? '') : false;
      if (last === 'cast_output') return schema !== 'aws_sagemaker';
      return !(ROW_ONLY_FUNCTIONS.has(last) && schema === 'pg_catalog');
    }
    if (type === 'TypeCast') {
      const names: string[] = node.TypeCast.typeName.names.map((n: AstNode) => n.String?.sval);
      return !(names[0] === 'pg_catalog' || (names.length === 1 && BUILTIN_TYPES.has(names[0])));
    }
    return false;
  });
}

/**
 * Whether a wrapper's body may be inlined into a statement at all.
 * - Not with a "bit" argument or result: the deparser writes the type back
 *   as `bit`, which a cast reads as bit(1).
 * - Not a VARIADIC one: a call lists the values, which the inlined body
 *   would get as its array parameter.
 * - With SET clauses PostgreSQL never inlines a function: its body runs under
 *   them. Only a search_path of pg_catalog and pg_temp alone (the usual
 *   hardening, `SET search_path = pg_catalog, pg_temp`) is allowed, for a
 *   body that reads the same under any path (selfContained, its ML calls
 *   schema-qualified).
 * - A SECURITY DEFINER body runs as its owner, and inlined it would run as
 *   the caller: only a self-contained one is inlined.
 * - Not with a polymorphic parameter or result (a cast to one changes
 *   nothing), nor a domain with a length (a call checks it, a cast cuts).
 * - Not one that has a parameter its body never reads, when PostgreSQL would
 *   call it as a function (not VOLATILE, or SECURITY DEFINER), which computes
 *   the argument and raises its errors; unless it is STRICT, whose NULL test
 *   computes every argument.
 */
function inlinable(
  types: string[],
  returnType: string,
  traits: {
    definer: boolean;
    variadic: boolean;
    settings: string[];
    volatile: boolean;
    strict: boolean;
    lengthDomains: boolean;
    uses: number[];
  },
  body: AstNode,
): boolean {
  const { definer, variadic, settings } = traits;
  if (variadic || [...types, returnType].some((t) => t.startsWith('"bit"'))) return false;
  if (traits.lengthDomains || [...types, returnType].some((t) => POLYMORPHIC_TYPES.has(t))) return false;
  // Called as a function, every argument is computed once, before the body: one the body never reads would still
  // raise its error. PostgreSQL inlines (and so drops it) only a VOLATILE function that is not SECURITY DEFINER;
  // a STRICT one's NULL test computes every argument (see recognizeMlCall).
  if ((!traits.volatile || definer) && !traits.strict && traits.uses.some((n) => n === 0)) return false;
  if (settings.length > 0) {
    const paths = settings.map((setting) => /^search_path=(.*)$/s.exec(setting)?.[1]);
    if (paths.some((path) => path === undefined || !catalogOnly(path))) return false;
    return selfContained(body, true);
  }
  return !definer || selfContained(body, false);
}

/** Pseudo-types whose actual type a call decides (format_type's names): a cast to one changes nothing. */
const POLYMORPHIC_TYPES: ReadonlySet<string> = new Set([
  '"any"',
  'anyelement',
  'anyarray',
  'anynonarray',
  'anyenum',
  'anyrange',
  'anymultirange',
  'anycompatible',
  'anycompatiblearray',
  'anycompatiblenonarray',
  'anycompatiblerange',
  'anycompatiblemultirange',
]);

/** Whether a search_path holds nothing but pg_catalog and pg_temp (the usual hardening). */
function catalogOnly(path: string): boolean {
  const schemas = path.split(',').map((s) => s.trim().replace(/^"(.*)"$/, '$1'));
  return schemas.every((schema) => schema === 'pg_catalog' || schema === 'pg_temp');
}

function bodyExpression(prosrc: string): AstNode | undefined {
  try {
    const statements = parse(prosrc);
    if (statements.length !== 1) return undefined;
    const select = statements[0].stmt.SelectStmt;
    if (select?.op !== 'SETOP_NONE' || select.fromClause || select.whereClause) return undefined;
    if (select.groupClause || select.havingClause || select.withClause || select.valuesLists) return undefined;
    // A LIMIT 0 or an OFFSET makes the body's one row none, which the expression alone would not.
    if (select.limitCount || select.limitOffset || select.windowClause || select.lockingClause) return undefined;
    if (select.distinctClause || select.sortClause) return undefined;
    if (select.targetList?.length !== 1) return undefined;
    const value = select.targetList[0].ResTarget.val;
    return nodeType(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** What a column reference in a wrapper's body means, read as PostgreSQL reads it against the parameters. */
export type ParameterReference = { index: number; field?: string } | 'unsupported' | undefined;

/**
 * The parameter a column reference in a wrapper's body names, as PostgreSQL
 * resolves names in a SQL function: `p`, `fn.p`, a field of a composite
 * parameter `p.f` or `fn.p.f` (`fn.p` first when both could be meant).
 * 'unsupported' for a whole-row `p.*`; undefined for anything else (a
 * column, when the reference stands in a subquery with a FROM).
 */
export function parameterReference(node: AstNode, fnName: string, argNames: readonly string[]): ParameterReference {
  const fields: AstNode[] | undefined = inner(node, 'ColumnRef')?.fields;
  if (!fields) return undefined;
  const names: (string | undefined)[] = fields.map((f) => f.String?.sval);
  const star = fields.some((f) => inner(f, 'A_Star'));
  const at = (name: string | undefined) => (name === undefined ? -1 : argNames.indexOf(name));
  let found: { index: number; field?: string } | undefined;
  if (names.length === 1 && at(names[0]) >= 0) found = { index: at(names[0]) };
  else if (names.length === 2 && names[0] === fnName && at(names[1]) >= 0) found = { index: at(names[1]) };
  else if (names.length === 2 && at(names[0]) >= 0) found = { index: at(names[0]), field: names[1] };
  else if (names.length === 3 && names[0] === fnName && at(names[1]) >= 0)
    found = { index: at(names[1]), field: names[2] };
  if (!found) return undefined;
  return star ? 'unsupported' : found;
}

/**
 * Whether a parameter named in the body may mean a column instead: in a
 * subquery with a FROM clause, PostgreSQL resolves a name to a column of a
 * table there before the function's parameter of that name (and `fn.name` to
 * a table aliased as the function, `p.f` to a table aliased `p`). Inlined, the
 * argument would take its place; such bodies are not inlined. (`$n` always
 * means the parameter.)
 */
function namesMayMeanColumns(body: AstNode, fnName: string, argNames: string[]): boolean {
  const namesParameter = (node: AstNode) => parameterReference(node, fnName, argNames) !== undefined;
  return some(body, (node) => {
    const select = inner(node, 'SelectStmt');
    return Boolean(select?.fromClause) && some(node, namesParameter);
  });
}

/** How many times the body names each parameter, by name or number. */
function parameterUses(body: AstNode, fnName: string, argNames: string[], count: number): number[] {
  const uses = new Array<number>(count).fill(0);
  walk(body, (node) => {
    const named = parameterReference(node, fnName, argNames);
    if (named && named !== 'unsupported') uses[named.index] += 1;
    const number = inner(node, 'ParamRef')?.number;
    if (number >= 1 && number <= count) uses[number - 1] += 1;
    return undefined;
  });
  return uses;
}

/**
 * Whether SQL names a column `aws_ml_…` without its relation: the results
 * the gateway joins into a statement bring columns so named, which such a
 * name would then mean (or be ambiguous with).
 */
export function namesGatewayColumns(sql: AstNode): boolean {
  return some(sql, (node) => {
    const fields = inner(node, 'ColumnRef')?.fields;
    return fields?.length === 1 && String(fields[0].String?.sval ?? '').startsWith('aws_ml_');
  });
}

/** Runs one catalog query whose `columns` columns are all text, giving its rows. */
type CatalogRead = (sql: string, columns: number) => Promise<string[][]>;

/**
 * How this database's catalog is read. The catalog is shared by every session
 * of the database while the session that reads it is any one of them, so a
 * function or operator that session's search_path puts before pg_catalog's
 * must not take part (a `=` of its own could pair a view's name with another
 * view's definition, which other sessions would then run). aws_ml 1.4 runs
 * each query inside `aws_ml.catalog_rows`, whose `SET search_path` puts
 * pg_catalog alone on the path while it runs (a SET LOCAL would be reported
 * to the client: PostgreSQL 18 reports search_path). Older versions run the
 * queries as they are, and their views are defined as pg_get_viewdef prints them.
 */
async function catalogReader(backend: BackendChannel): Promise<{ read: CatalogRead; viewsQualified: boolean }> {
  // (pg_catalog.text: a type named text of the session's own would make the signature another one's.)
  const { rows } = await backend.query(`
    SELECT pg_catalog.to_regprocedure('aws_ml.catalog_rows(pg_catalog.text)') IS NOT NULL,
           pg_catalog.to_regprocedure('aws_ml.view_definition(pg_catalog.oid)') IS NOT NULL`);
  const contained = rows[0]?.[0] === 't';
  const read: CatalogRead = async (sql, columns) => {
    if (!contained) return (await backend.query(sql)).rows as string[][];
    let tag = 'aws_ml_catalog';
    while (sql.includes(`$${tag}$`)) tag += '_';
    const types = Array.from({ length: columns }, (_, i) => `c${i} pg_catalog.text`).join(', ');
    return (await backend.query(`SELECT * FROM aws_ml.catalog_rows($${tag}$${sql}$${tag}$) AS t(${types})`))
      .rows as string[][];
  };
  return { read, viewsQualified: rows[0]?.[1] === 't' };
}

/**
 * Marks wrappers whose name other functions have too: which one a call means
 * is PostgreSQL's choice (by argument types, by search_path), so batch mode
 * does not inline them, unless they are functions of the same argument types
 * in other schemas only (a schema per tenant): then an unqualified call means
 * the first of them on the session's search_path (see namesakeSchemas).
 */
async function noteNamesakes(read: CatalogRead, wrappers: WrapperFunction[]): Promise<void> {
  if (wrappers.length === 0) return;
  const names = [...new Set(wrappers.map((w) => w.name))];
  const functions = await read(
    `
    SELECT n.nspname::text, p.proname::text, p.oid::text,
           p.proargtypes::text || ' ' || p.prokind::text || ' ' || p.provariadic::text || ' ' || COALESCE(p.proargnames::text, '')
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE p.proname = ANY (${quoteLiteralArray(names)})`,
    4,
  );
  for (const wrapper of wrappers) {
    const named = functions.filter(([, name]) => name === wrapper.name);
    const own = named.find(([, , oid]) => oid === wrapper.oid);
    const others = named.filter(([, , oid]) => oid !== wrapper.oid);
    if (others.some(([schema]) => schema === wrapper.schema)) wrapper.namesakes = 'same-schema';
    else if (others.length > 0) {
      wrapper.namesakes = 'other-schemas';
      // (Alike: the same argument types, kind, VARIADIC element and argument names. A VARIADIC namesake takes
      // the same arguments spread out; one with other names is what a call by name means.)
      const alike = others.every(([, , , signature]) => own && signature === own[3]);
      if (alike) wrapper.namesakeSchemas = others.map(([schema]) => schema);
    }
  }
}

/**
 * Reads which functions and views wrap ML calls, following wrappers of wrappers.
 * Runs on the client's own session so that it sees uncommitted DDL.
 */
export async function loadMlCatalog(backend: BackendChannel): Promise<MlCatalog> {
  const { read, viewsQualified } = await catalogReader(backend);
  const wrappers = new Map<string, WrapperFunction>();
  let names = [...ML_NAMES];
  for (let round = 0; round < 6; round++) {
    const pattern = names.map((n) => n.replace(/[^a-z0-9_]/gi, '')).join('|');
    // (Every function, operator and type qualified, for aws_ml before 1.4: see catalogReader.)
    const result = await read(
      `
      SELECT n.nspname::pg_catalog.text, p.proname::pg_catalog.text, ${FUNCTION_BODY},
             -- (Input arguments only: proargnames also names OUT arguments, in declaration order.)
             COALESCE((SELECT pg_catalog.string_agg(a.name, ',' ORDER BY a.i)
                         FROM ROWS FROM (pg_catalog.unnest(p.proargnames), pg_catalog.unnest(p.proargmodes))
                              WITH ORDINALITY AS a(name, mode, i)
                        WHERE a.mode IS NULL OR a.mode OPERATOR(pg_catalog.=) ANY ('{i,b,v}'::pg_catalog."char"[])), ''),
             -- (Typmod -1, not NULL: a parameter declared char(3) is bpchar, which format_type(t, NULL) writes
             -- as "character", i.e. char(1) in a cast; likewise bit. Arguments and results are cast to these.)
             COALESCE((SELECT pg_catalog.string_agg(pg_catalog.format_type(t, -1), ',' ORDER BY i)
                         FROM pg_catalog.unnest(p.proargtypes::pg_catalog.oid[]) WITH ORDINALITY AS a(t, i)), ''),
             COALESCE(pg_catalog.pg_get_expr(p.proargdefaults, 0), ''),
             pg_catalog.format_type(p.prorettype, -1),
             p.oid::pg_catalog.text,
             p.prosecdef::pg_catalog.text,
             pg_catalog.pg_get_userbyid(p.proowner)::pg_catalog.text,
             p.proisstrict::pg_catalog.text,
             p.xmin::pg_catalog.text,
             COALESCE(pg_catalog.array_to_string(p.proconfig, E'\\n'), ''),
             (p.provariadic OPERATOR(pg_catalog.<>) 0)::pg_catalog.text,
             p.provolatile::pg_catalog.text,
             -- (A domain whose base has a length: a call checks it, where a cast would cut the value to it. One
             -- over another domain may too. Arrays of them likewise.)
             EXISTS (SELECT FROM pg_catalog.pg_type t
                      WHERE (t.oid OPERATOR(pg_catalog.=) ANY (p.proargtypes::pg_catalog.oid[])
                             OR t.oid OPERATOR(pg_catalog.=) p.prorettype
                             OR t.typarray OPERATOR(pg_catalog.=) ANY (p.proargtypes::pg_catalog.oid[])
                             OR t.typarray OPERATOR(pg_catalog.=) p.prorettype)
                        AND t.typtype OPERATOR(pg_catalog.=) 'd'
                        AND (t.typtypmod OPERATOR(pg_catalog.>=) 0
                             OR EXISTS (SELECT FROM pg_catalog.pg_type b
                                         WHERE b.oid OPERATOR(pg_catalog.=) t.typbasetype
                                           AND b.typtype OPERATOR(pg_catalog.=) 'd')))::pg_catalog.text
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
       WHERE p.prolang OPERATOR(pg_catalog.=)
               (SELECT l.oid FROM pg_catalog.pg_language l WHERE l.lanname OPERATOR(pg_catalog.=) 'sql')
         AND NOT n.nspname OPERATOR(pg_catalog.=)
               ANY ('{aws_ml,aws_comprehend,aws_sagemaker,pg_catalog,information_schema}'::pg_catalog.name[])
         AND NOT p.proretset
         AND ${FUNCTION_BODY} OPERATOR(pg_catalog.~*) '(${pattern})'`,
      16,
    );
    let added = false;
    for (const [
      schema,
      name,
      prosrc,
      argNames,
      argTypes,
      defaults,
      returnType,
      oid,
      definer,
      owner,
      strict,
      version,
      config,
      variadic,
      volatility,
      lengthDomains,
    ] of result) {
      const key = `${schema}.${name}`;
      if (wrappers.has(key)) continue;
      const types = argTypes ? argTypes.split(',') : [];
      const names = argNames ? argNames.split(',').slice(0, types.length) : [];
      const body = bodyExpression(bodySql(prosrc));
      wrappers.set(key, {
        schema,
        name,
        argNames: names,
        argTypes: types,
        defaults: splitDefaults(defaults),
        returnType,
        bodyExpression:
          body &&
          !namesMayMeanColumns(body, name, names) &&
          !namesGatewayColumns(body) &&
          inlinable(
            types,
            returnType,
            {
              definer: definer === 'true',
              variadic: variadic === 'true',
              settings: config ? config.split('\n') : [],
              volatile: volatility === 'v',
              strict: strict === 'true',
              lengthDomains: lengthDomains === 'true',
              uses: parameterUses(body, name, names, types.length),
            },
            body,
          )
            ? body
            : undefined,
        oid,
        version,
        securityDefiner: definer === 'true',
        strict: strict === 'true',
        owner,
      });
      added = true;
    }
    if (!added) break;
    names = [...new Set([...ML_NAMES, ...[...wrappers.values()].map((w) => w.name)])];
  }
  await noteNamesakes(read, [...wrappers.values()]);
  const [builtins] = await read(
    `
    SELECT EXISTS (SELECT FROM pg_catalog.pg_proc p WHERE p.proname = 'json_build_array'
                      AND p.pronamespace <> 'pg_catalog'::regnamespace)::text,
           -- (Read from the catalog, not through the name: the user may lack USAGE on the schema.)
           (SELECT bool_and(p.prosrc LIKE '%model_input IS NULL%') FROM pg_catalog.pg_proc p
              JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'aws_sagemaker' AND p.proname = 'invoke_endpoint')::text`,
    2,
  );
  // Views (and materialized views) that call ML functions, and those reading them, transitively.
  const definition = viewsQualified
    ? "CASE WHEN c.relpersistence = 't' THEN pg_catalog.pg_get_viewdef(c.oid) ELSE aws_ml.view_definition(c.oid) END"
    : 'pg_catalog.pg_get_viewdef(c.oid)';
  const views = await read(
    `
    ${viewsCallingSql('ml_views', names)}
    SELECT n.nspname::text, c.relname::text, c.relkind::text, ${definition},
           ${reloptionOn('security_barrier')}::text,
           c.oid::text, (${viewsQualified} AND c.relpersistence <> 't')::text
      FROM ml_views v
      JOIN pg_catalog.pg_class c ON c.oid = v.oid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
    7,
  );
  const mlViews: MlView[] = views.map(([schema, name, kind, text, barrier, oid, qualified]) => ({
    schema,
    name,
    kind: kind === 'm' ? 'matview' : 'view',
    definition: text,
    securityBarrier: barrier === 'true',
    oid,
    qualified: qualified === 'true',
  }));
  const { aggregates, ...traits } = await writersAndChangers(read);
  for (const wrapper of wrappers.values()) {
    if (wrapper.bodyExpression && callsRowMakers(wrapper.bodyExpression, { ...traits, aggregates })) {
      wrapper.bodyExpression = undefined;
    }
  }
  return {
    wrappers: [...wrappers.values()],
    views: mlViews,
    names: [...new Set([...names, ...mlViews.map((v) => v.name)])],
    packerShadowed: builtins?.[0] === 'true',
    endpointNoOp: builtins?.[1] === 'true',
    ...traits,
  };
}

/**
 * In one read of pg_proc: functions that return sets (see
 * MlCatalog.setReturning), and PostgreSQL's own VOLATILE ones as it declares
 * them (uuidv4, array_shuffle…: a list would miss some).
 */
async function builtinTraits(
  read: CatalogRead,
): Promise<{ setReturning: Set<string>; volatile: Set<string>; aggregates: Set<string> }> {
  const rows = await read(
    `
    SELECT DISTINCT proname::text, proretset::text, (provolatile = 'v' AND pronamespace = 'pg_catalog'::regnamespace)::text,
           (prokind IN ('a', 'w'))::text
      FROM pg_catalog.pg_proc
     WHERE proretset OR (provolatile = 'v' AND pronamespace = 'pg_catalog'::regnamespace) OR prokind IN ('a', 'w')`,
    4,
  );
  const setReturning = new Set<string>();
  const volatile = new Set<string>();
  const aggregates = new Set<string>();
  for (const [name, returnsSet, builtinVolatile, aggregate] of rows) {
    if (returnsSet === 'true') setReturning.add(name);
    if (builtinVolatile === 'true') volatile.add(name);
    if (aggregate === 'true') aggregates.add(name);
  }
  return { setReturning, volatile, aggregates };
}

/**
 * Whether a wrapper's body calls an aggregate or window function (of any
 * schema, by name) or one that returns a set: its one row is then made by
 * the call (an aggregate over it, none or several rows), which the expression
 * inlined into another statement would not make. PostgreSQL does not inline
 * such bodies either.
 */
function callsRowMakers(body: AstNode, traits: { setReturning: Set<string>; aggregates: Set<string> }): boolean {
  let found = false;
  walk({ root: body }, (node) => {
    // (A subquery's aggregate or set is its own: `SELECT f((SELECT max(x) FROM t))` inlines as PostgreSQL's would.)
    if (found || nodeType(node) === 'SubLink') return false;
    const call = inner(node, 'FuncCall');
    if (!call) return undefined;
    const name = functionName(call).at(-1) ?? '';
    found =
      Boolean(call.over || call.agg_star || call.agg_distinct || call.agg_order || call.agg_filter) ||
      traits.setReturning.has(name) ||
      traits.aggregates.has(name);
    return undefined;
  });
  return found;
}

/** What of the database's own may write, and what changes from call to call (see MlCatalog). */
async function writersAndChangers(read: CatalogRead) {
  const traits = await builtinTraits(read);
  const volatile = await volatileFunctions(read);
  const written = await writers(read, volatile);
  return {
    ...written,
    ...(await changers(read, volatile.readers, volatile.writing, traits.volatile)),
    setReturning: traits.setReturning,
    aggregates: traits.aggregates,
  };
}

/**
 * The database's own SQL functions made only of queries whose value changes
 * from call to call, and operators whose function is one (see
 * MlCatalog.changingFunctions). Functions that may write are not among them:
 * statements calling those answer per row anyway.
 */
async function changers(
  read: CatalogRead,
  readers: ReadonlyMap<string, AstNode[]>,
  writing: ReadonlySet<string>,
  builtinVolatile: ReadonlySet<string>,
): Promise<Pick<MlCatalog, 'changingFunctions' | 'changingOperators'>> {
  const changingFunctions = new Set<string>(builtinVolatile);
  const reaches = (body: AstNode) =>
    callsFunction(body, (name) => CHANGING_FUNCTIONS.has(name) || changingFunctions.has(name));
  for (let grew = true; grew; ) {
    grew = false;
    for (const [name, bodies] of readers) {
      if (writing.has(name) || changingFunctions.has(name) || !bodies.some(reaches)) continue;
      changingFunctions.add(name);
      grew = true;
    }
  }
  if (changingFunctions.size === 0) return { changingFunctions };
  const rows = await read(
    `
    SELECT DISTINCT o.oprname::text FROM pg_catalog.pg_operator o
      JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
     WHERE p.proname = ANY (${quoteLiteralArray([...changingFunctions])}) AND p.provolatile = 'v'`,
    1,
  );
  return { changingFunctions, changingOperators: new Set(rows.map(([name]) => name)) };
}

/**
 * Everything through which a statement may run a function that writes (see
 * MlCatalog.sideEffects and what follows it). A SQL function made only of
 * queries writes if it reaches a writer: a call, an operator, a cast, a
 * relation whose reading runs one; and what such a function reaches in turn
 * (an aggregate, an operator, a policy) writes too: read until nothing changes.
 */
async function writers(
  read: CatalogRead,
  { writing, readers }: VolatileFunctions,
): Promise<
  Pick<
    MlCatalog,
    'sideEffects' | 'writingOperators' | 'writingTypes' | 'writersEverywhere' | 'relationsWithSideEffects'
  >
> {
  for (let round = 0; ; round++) {
    const before = writing.size;
    const indirect = await writingOperatorsAndTypes(read, writing);
    for (const name of indirect.writingFunctions) writing.add(name);
    const relations = await relationsCalling(read, writing, indirect.writingTypes);
    const reaches = (body: AstNode) =>
      callsFunction(body, (name) => writing.has(name)) ||
      some(body, (node) => {
        if (usesWriter(node, indirect)) return true;
        const relation = inner(node, 'RangeVar')?.relname;
        return relation !== undefined && relations.has(relation);
      });
    for (let changed = true; changed; ) {
      changed = false;
      for (const [name, bodies] of readers) {
        if (writing.has(name) || !bodies.some(reaches)) continue;
        writing.add(name);
        changed = true;
      }
    }
    // Each round adds writers until none is left to add; a chain longer than this many rounds is
    // taken for one that reaches everything.
    const settled = writing.size === before;
    if (settled || round >= MAX_WRITER_ROUNDS) {
      return {
        sideEffects: writing,
        writingOperators: indirect.writingOperators,
        writingTypes: indirect.writingTypes,
        writersEverywhere: indirect.writersEverywhere || !settled,
        relationsWithSideEffects: relations,
      };
    }
  }
}

const MAX_WRITER_ROUNDS = 20;

/** An operator whose function may write, or a cast to a type that runs such a function (see MlCatalog.writingOperators). */
export function usesWriter(node: AstNode, writers: Pick<MlCatalog, 'writingOperators' | 'writingTypes'>): boolean {
  const operator = operatorName(node);
  if (operator && writers.writingOperators?.has(operator)) return true;
  const cast: AstNode[] | undefined = inner(node, 'TypeCast')?.typeName?.names;
  return Boolean(cast && writers.writingTypes?.has(cast[cast.length - 1]?.String?.sval));
}

/** Operators PostgreSQL also applies where none is written: BETWEEN, simple CASE, sorting, grouping, joins. */
const IMPLICIT_OPERATORS = new Set(['=', '<>', '<', '<=', '>', '>=']);

/**
 * Operators whose function may write, and types a cast to which runs such a
 * function (a cast function, or a domain's CHECK): a statement that uses one
 * would run it again in its argument queries, as one that calls the function.
 */
async function writingOperatorsAndTypes(
  read: CatalogRead,
  functions: ReadonlySet<string>,
): Promise<{
  writingOperators: Set<string>;
  writingTypes: Set<string>;
  writingFunctions: Set<string>;
  writersEverywhere: boolean;
}> {
  // (Only VOLATILE functions of those names: a built-in of the same name is not one of them.)
  const writers = `writer AS (SELECT p.oid FROM pg_catalog.pg_proc p
      WHERE p.proname = ANY (${quoteLiteralArray([...functions])}) AND p.provolatile = 'v')`;
  // Types whose values a cast or coercion checks with such a function: domains whose CHECK calls one, and
  // domains over them, arrays of them, composite types (and tables' row types) with a column of one.
  const rows = await read(
    `
    WITH RECURSIVE ${writers}, writing_type(oid) AS (
      SELECT c.contypid FROM pg_catalog.pg_constraint c
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::regclass AND d.objid = c.oid
         AND d.refclassid = 'pg_catalog.pg_proc'::regclass
        JOIN writer p ON p.oid = d.refobjid
       WHERE c.contypid <> 0
      -- (ALL: types cannot contain themselves, so this ends; repeats are dropped below.)
      UNION ALL
      SELECT t.oid FROM writing_type w
        LEFT JOIN pg_catalog.pg_attribute a ON a.atttypid = w.oid AND a.attnum > 0 AND NOT a.attisdropped
        JOIN pg_catalog.pg_type t
          ON t.typbasetype = w.oid OR (t.typelem = w.oid AND t.typcategory = 'A') OR t.typrelid = a.attrelid
    )
    SELECT 'operator', o.oprname::text FROM pg_catalog.pg_operator o JOIN writer p ON p.oid = o.oprcode
    UNION ALL
    -- (An operand of such a type is checked when it is coerced to it.)
    SELECT 'operator', o.oprname::text FROM writing_type w
      JOIN pg_catalog.pg_operator o ON o.oprleft = w.oid OR o.oprright = w.oid
    UNION ALL
    SELECT CASE WHEN c.castcontext = 'i' THEN 'everywhere' ELSE 'type' END, t.typname::text
      FROM pg_catalog.pg_cast c
      JOIN writer p ON p.oid = c.castfunc
      JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
    UNION ALL
    SELECT 'type', t.typname::text FROM writing_type w JOIN pg_catalog.pg_type t ON t.oid = w.oid
    UNION ALL
    -- (A function given or giving such a type checks it.)
    SELECT 'function', p.proname::text FROM writing_type w
      JOIN pg_catalog.pg_proc p ON w.oid = ANY (p.proargtypes::oid[]) OR w.oid = p.prorettype
    UNION ALL
    -- Aggregates whose transition, final or combine functions write.
    SELECT 'function', g.proname::text
      FROM (SELECT a.aggfnoid, unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                   a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn]::oid[]) AS part
              FROM pg_catalog.pg_aggregate a) a
      JOIN pg_catalog.pg_proc g ON g.oid = a.aggfnoid
      JOIN writer p ON p.oid = a.part
    UNION ALL
    -- Operator classes: PostgreSQL sorts, groups, hashes and merges with their operators and support functions.
    SELECT 'everywhere', '' FROM pg_catalog.pg_amproc ap JOIN writer p ON p.oid = ap.amproc
    UNION ALL
    SELECT 'everywhere', '' FROM pg_catalog.pg_amop ao JOIN pg_catalog.pg_operator o ON o.oid = ao.amopopr
      JOIN writer p ON p.oid = o.oprcode`,
    2,
  );
  const found = { operator: new Set<string>(), type: new Set<string>(), function: new Set<string>() };
  let everywhere = false;
  for (const [kind, name] of rows) {
    if (kind === 'everywhere') everywhere = true;
    else found[kind as keyof typeof found].add(name);
  }
  return {
    writingOperators: found.operator,
    writingTypes: found.type,
    writingFunctions: found.function,
    // PostgreSQL applies these where no operator or cast is written: every statement is suspect.
    writersEverywhere: everywhere || [...found.operator].some((name) => IMPLICIT_OPERATORS.has(name)),
  };
}

/**
 * Built-in functions with side effects that batch mode must not run a second
 * time (in argument queries): statements that call them go per row.
 */
export const SIDE_EFFECT_FUNCTIONS: ReadonlySet<string> = new Set([
  'nextval',
  'setval',
  'set_config',
  'pg_notify',
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_advisory_xact_lock',
  'pg_advisory_xact_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
  'pg_try_advisory_xact_lock',
  'pg_try_advisory_xact_lock_shared',
  'pg_advisory_unlock',
  'pg_advisory_unlock_shared',
  'pg_advisory_unlock_all',
  'lo_import',
  'lo_export',
  'lo_create',
  'lo_creat',
  'lo_unlink',
  'lo_put',
  'lo_from_bytea',
  'lowrite',
  'lo_truncate',
  'lo_truncate64',
  'pg_logical_emit_message',
  'pg_cancel_backend',
  'pg_terminate_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_stat_reset',
  'pg_stat_reset_shared',
  'pg_stat_reset_single_table_counters',
  'pg_stat_reset_single_function_counters',
  'pg_switch_wal',
  'pg_create_restore_point',
  'txid_current',
  'pg_current_xact_id',
  'dblink_exec',
  'dblink_send_query',
]);

/**
 * The database's own VOLATILE functions: those that may write (and the
 * built-in writers), and the SQL ones made only of queries, with their
 * bodies, which write only through what they reach (see writers).
 */
interface VolatileFunctions {
  writing: Set<string>;
  readers: Map<string, AstNode[]>;
}

async function volatileFunctions(read: CatalogRead): Promise<VolatileFunctions> {
  const rows = await read(
    `
    SELECT p.proname::text, (l.lanname = 'sql')::text, ${FUNCTION_BODY}
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang
     WHERE p.provolatile = 'v' AND p.prokind = 'f'
       AND n.nspname NOT IN ('aws_ml', 'aws_comprehend', 'aws_sagemaker', 'aws_commons', 'aws_s3', 'pg_catalog', 'information_schema')
       AND (n.nspname !~ '^pg_' OR n.nspname ~ '^pg_temp_')`,
    3,
  );
  const writing = new Set<string>(SIDE_EFFECT_FUNCTIONS);
  const readers = new Map<string, AstNode[]>();
  for (const [name, sql, prosrc] of rows) {
    const body = sql === 'true' ? readingBody(bodySql(prosrc)) : undefined;
    if (body) readers.set(name, [...(readers.get(name) ?? []), body]);
    else writing.add(name);
  }
  return { writing, readers };
}

/**
 * Relations whose reading runs one of these functions: views (their rules)
 * and tables with row-level security (their policies) that call one, apply
 * an operator of one, cast to one of these types, or read such a relation.
 */
async function relationsCalling(
  read: CatalogRead,
  functions: ReadonlySet<string>,
  types: ReadonlySet<string>,
): Promise<Set<string>> {
  const rows = await read(
    `
    WITH RECURSIVE writer AS (
      SELECT p.oid FROM pg_catalog.pg_proc p WHERE p.proname = ANY (${quoteLiteralArray([...functions])})
    ), dependent AS (
      SELECT d.refclassid, d.refobjid, COALESCE(r.ev_class, y.polrelid) AS relation
        FROM pg_catalog.pg_depend d
        LEFT JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
        LEFT JOIN pg_catalog.pg_policy y ON d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = y.oid
       WHERE d.classid IN ('pg_catalog.pg_rewrite'::regclass, 'pg_catalog.pg_policy'::regclass)
    ), calling(oid) AS (
      SELECT x.relation FROM dependent x
        JOIN writer p ON x.refclassid = 'pg_catalog.pg_proc'::regclass AND x.refobjid = p.oid
      UNION
      SELECT x.relation FROM dependent x
        JOIN pg_catalog.pg_operator o ON x.refclassid = 'pg_catalog.pg_operator'::regclass AND x.refobjid = o.oid
        JOIN writer p ON p.oid = o.oprcode
      UNION
      SELECT x.relation FROM dependent x
        JOIN pg_catalog.pg_type t ON x.refclassid = 'pg_catalog.pg_type'::regclass AND x.refobjid = t.oid
       WHERE t.typname = ANY (${quoteLiteralArray([...types])})
      UNION
      SELECT x.relation FROM calling v
        JOIN dependent x ON x.refclassid = 'pg_catalog.pg_class'::regclass AND x.refobjid = v.oid
       WHERE x.relation <> v.oid
    )
    SELECT DISTINCT c.relname::text FROM calling v JOIN pg_catalog.pg_class c ON c.oid = v.oid
     WHERE c.relkind = 'v' OR (c.relkind IN ('r', 'p') AND c.relrowsecurity)`,
    1,
  );
  return new Set(rows.map(([name]) => name));
}

/**
 * A WITH RECURSIVE clause naming `name` the views and materialized views
 * whose definition calls a function of one of these names, or reads such a view.
 */
function viewsCallingSql(name: string, functions: string[]): string {
  return `WITH RECURSIVE ${name}(oid) AS (
      SELECT r.ev_class
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
        JOIN pg_catalog.pg_proc p ON d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid = p.oid
       WHERE p.proname = ANY (${quoteLiteralArray(functions)})
      UNION
      SELECT r.ev_class
        FROM ${name} v
        JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = v.oid
        JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
       WHERE r.ev_class <> v.oid
    )`;
}

/** A SQL function body made only of queries (no INSERT, UPDATE, DELETE or MERGE, in WITH either), else undefined. */
function readingBody(prosrc: string): AstNode | undefined {
  try {
    const statements = parse(prosrc).map((s) => s.stmt);
    if (statements.length === 0 || statements.some((stmt) => nodeType(stmt) !== 'SelectStmt')) return undefined;
    // (SELECT … INTO makes a table.)
    const writes = (node: AstNode) =>
      ['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'].includes(nodeType(node) ?? '') ||
      Boolean(inner(node, 'SelectStmt')?.intoClause);
    let writing = false;
    walk(statements, (node) => {
      if (writes(node)) writing = true;
      return writing ? false : undefined;
    });
    return writing ? undefined : statements;
  } catch {
    return undefined;
  }
}

/** pg_get_expr of proargdefaults is a comma-separated list; split at top-level commas. */
function splitDefaults(text: string): string[] {
  if (!text) return [];
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'") quoted = !quoted;
    else if (!quoted && c === '(') depth += 1;
    else if (!quoted && c === ')') depth -= 1;
    else if (!quoted && depth === 0 && c === ',') {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out;
}

export const EMPTY_CATALOG: MlCatalog = { wrappers: [], views: [], names: [...ML_NAMES] };

import { type AstNode, clone, deparse, functionName, inner, nodeType, parseExpression, walk } from '../sql/ast.js';
import { quoteLiteralAnyStrings } from '../sql/quote.js';
import { type MlCatalog, parameterReference, type WrapperFunction } from './catalog.js';

export type MlKind = 'sentiment' | 'endpoint';

/**
 * One call of an ML function as batch mode sees it: what the service needs per
 * row, as SQL expressions evaluated in the call's own query level.
 */
export interface MlCall {
  kind: MlKind;
  /** The FuncCall node as written (a builtin ML function or a wrapper). */
  node: AstNode;
  /** `aws_comprehend.detect_sentiment`, `aws_sagemaker.invoke_endpoint` or the wrapper's name. */
  label: string;
  /** text-valued SQL: the language code or the endpoint name. */
  targetSql: string;
  /** text-valued SQL: the document, or the JSON array of model inputs. */
  keySql: string;
  /** SQL of max_rows_per_batch, or undefined for NULL. */
  batchSql: string | undefined;
  /** For a wrapper: its body inlined with the call's arguments; the inner ML call is `inlinedCall`. */
  wrapper?: {
    fn: WrapperFunction;
    inlined: AstNode;
    inlinedCall: AstNode;
    /** What the parameters of every wrapper on the way get: the call's arguments, defaults where not given. */
    values: AstNode[];
    chain: WrapperFunction[];
    /** Those of the chain called by an unqualified name that the search_path resolves (see firstOnPath). */
    byPath: WrapperFunction[];
    /** SQL true when this wrapper is STRICT and gets a NULL argument: it is NULL, its body never runs. */
    nullWhen?: string;
    /**
     * SQL true when no ML call is made for the row: a STRICT wrapper on the
     * way (this one or one inlined in it) gets a NULL. Nothing is scored then.
     */
    skipWhen?: string;
  };
  /** The builtin function finally called, for privilege checks. */
  builtinSignature: BuiltinSignature;
}

/** Schema, name and argument type OIDs (varchar 1043, integer 23, json 114) of a builtin ML function. */
interface BuiltinSignature {
  schema: string;
  name: string;
  argTypes: string;
}

const SENTIMENT_SIGNATURE = { schema: 'aws_comprehend', name: 'detect_sentiment', argTypes: '1043 1043 23' };
const SENTIMENT_TEXT_FORM_SIGNATURE = {
  schema: 'aws_comprehend',
  name: 'detect_sentiment',
  argTypes: '1043 1043 1043 23',
};
const ENDPOINT_SIGNATURE = { schema: 'aws_sagemaker', name: 'invoke_endpoint', argTypes: '1043 23 114' };

const isNullConst = (node: AstNode) => inner(node, 'A_Const')?.isnull === true;

function constantOrNull(node: AstNode | undefined): string | undefined {
  if (!node || isNullConst(node)) return undefined;
  return deparse(node);
}

/** The value type a 3-argument detect_sentiment's last argument shows syntactically. */
function looksInteger(node: AstNode, paramTypes: readonly number[] = []): boolean | undefined {
  const constant = inner(node, 'A_Const');
  if (constant) {
    if (constant.ival !== undefined) return true;
    if (constant.sval !== undefined) return false;
    return undefined;
  }
  const cast = inner(node, 'TypeCast');
  if (cast) {
    const names: string[] = cast.typeName.names.map((n: AstNode) => n.String.sval);
    const type = names[names.length - 1];
    if (['int4', 'int2', 'int8', 'integer', 'int', 'bigint', 'smallint'].includes(type)) return true;
    if (['text', 'varchar', 'bpchar', 'name'].includes(type)) return false;
  }
  // Integer arithmetic on integers (`3 + 4`, `n * 10` of an integer parameter) gives an integer.
  const operation = inner(node, 'A_Expr');
  if (operation?.kind === 'AEXPR_OP' && operation.lexpr && operation.name?.length === 1) {
    const operator = operation.name[0].String?.sval;
    const integers =
      looksInteger(operation.lexpr, paramTypes) === true && looksInteger(operation.rexpr, paramTypes) === true;
    if (['+', '-', '*', '/', '%'].includes(operator) && integers) return true;
  }
  // A parameter's type is the driver's to declare (an untyped one is left to the per-row path).
  const param = inner(node, 'ParamRef');
  if (param) {
    const type = paramTypes[(param.number ?? 0) - 1];
    if (type === 20 || type === 21 || type === 23) return true; // int8, int2, int4
    if (type === 25 || type === 1043) return false; // text, varchar
  }
  return undefined;
}

/**
 * A three-argument detect_sentiment whose last argument's type, which decides the form PostgreSQL calls
 * (`(input_text, language_code, max_rows_per_batch)` or Aurora's `(unused, input_text, language_code)`), the
 * gateway cannot tell from the statement (a column, an expression): it is called per row.
 */
export function ambiguousSentimentCall(call: AstNode, paramTypes?: readonly number[]): boolean {
  if (!namesDetectSentiment(functionName(call))) return false;
  const args = positional(call);
  return args?.length === 3 && !isNullConst(args[2]) && looksInteger(args[2], paramTypes) === undefined;
}

/** A call written as a plain function call (not `f(*)`, DISTINCT, OVER, FILTER or ORDER BY inside). */
const plainCallSyntax = (call: AstNode): boolean =>
  !(call.agg_star || call.agg_distinct || call.over || call.agg_filter || call.agg_order);

/** Positional arguments, or undefined when named notation is used (see `byName`). */
function positional(call: AstNode): AstNode[] | undefined {
  const args: AstNode[] = call.args ?? [];
  if (args.some((a) => nodeType(a) === 'NamedArgExpr') || !plainCallSyntax(call)) return undefined;
  return args;
}

/**
 * The arguments in parameter order for a call that may use named notation
 * (`f(doc => body)`; positional ones come first, as PostgreSQL requires):
 * undefined where a parameter is not given, or when a name is not one of
 * `names` or is given twice.
 */
function byName(call: AstNode, names: readonly string[]): (AstNode | undefined)[] | undefined {
  const args: AstNode[] = call.args ?? [];
  if (!plainCallSyntax(call)) return undefined;
  const slots: (AstNode | undefined)[] = names.map(() => undefined);
  for (const [i, arg] of args.entries()) {
    const named = inner(arg, 'NamedArgExpr');
    const slot = named ? names.indexOf(named.name) : i;
    if (slot < 0 || slot >= slots.length || slots[slot] !== undefined) return undefined;
    slots[slot] = named ? named.arg : arg;
  }
  return slots;
}

const SENTIMENT_PARAMETERS = ['input_text', 'language_code', 'max_rows_per_batch'];
const SENTIMENT_TEXT_FORM_PARAMETERS = ['unused', 'input_text', 'language_code', 'max_rows_per_batch'];

/** detect_sentiment called with named arguments: its inputs, and the form PostgreSQL picks. */
function namedSentimentArguments(
  call: AstNode,
): { text: AstNode; language: AstNode; batch: AstNode | undefined; textForm: boolean } | undefined {
  const names: string[] = (call.args ?? []).flatMap((a: AstNode) => inner(a, 'NamedArgExpr')?.name ?? []);
  // Only the form with the `unused` first parameter has it (and requires it).
  const textForm = names.includes('unused');
  const slots = byName(call, textForm ? SENTIMENT_TEXT_FORM_PARAMETERS : SENTIMENT_PARAMETERS);
  if (!slots) return undefined;
  const [text, language, batch] = textForm ? slots.slice(1) : slots;
  if (!text || !language || (textForm && !slots[0])) return undefined;
  return { text, language, batch, textForm };
}

/** The call names `detect_sentiment`, with its schema aws_comprehend or none. */
function namesDetectSentiment(name: string[]): boolean {
  return (
    name.length <= 2 &&
    name[name.length - 1] === 'detect_sentiment' &&
    (name.length === 1 || name[0] === 'aws_comprehend')
  );
}

function builtinCall(call: AstNode, paramTypes?: readonly number[]): MlCall | undefined {
  const name = functionName(call);
  const last = name[name.length - 1];
  const schema = name.length === 2 ? name[0] : undefined;
  if (name.length > 2) return undefined;
  const sentiment = namesDetectSentiment(name);
  const named = sentiment && (call.args ?? []).some((a: AstNode) => nodeType(a) === 'NamedArgExpr');
  const args = named ? [] : positional(call);
  if (!args) return undefined;
  if (sentiment) {
    let text: AstNode;
    let language: AstNode;
    let batch: AstNode | undefined;
    let signature = SENTIMENT_SIGNATURE;
    if (named) {
      const given = namedSentimentArguments(call);
      if (!given) return undefined;
      ({ text, language, batch } = given);
      if (given.textForm) signature = SENTIMENT_TEXT_FORM_SIGNATURE;
    } else if (args.length === 2) [text, language] = args;
    else if (args.length === 4) {
      [, text, language, batch] = args;
      signature = SENTIMENT_TEXT_FORM_SIGNATURE;
    } else if (args.length === 3 && isNullConst(args[2])) {
      // PostgreSQL resolves an untyped NULL to the text form, which reads (doc, 'en', NULL) as Aurora does.
      [text, language] = args;
      signature = SENTIMENT_TEXT_FORM_SIGNATURE;
    } else if (args.length === 3) {
      const integerLast = looksInteger(args[2], paramTypes);
      if (integerLast === undefined) return undefined;
      if (integerLast) [text, language, batch] = args;
      else {
        [, text, language] = args;
        signature = SENTIMENT_TEXT_FORM_SIGNATURE;
      }
    } else return undefined;
    return {
      kind: 'sentiment',
      node: call,
      label: 'aws_comprehend.detect_sentiment',
      targetSql: storedText(language),
      keySql: storedText(text),
      batchSql: constantOrNull(batch),
      builtinSignature: signature,
    };
  }
  if (last === 'invoke_endpoint' && (schema ?? 'aws_sagemaker') === 'aws_sagemaker') {
    if (args.length !== 3) return undefined;
    return {
      kind: 'endpoint',
      node: call,
      label: 'aws_sagemaker.invoke_endpoint',
      targetSql: storedText(args[0]),
      keySql: storedText(args[2]),
      batchSql: constantOrNull(args[1]),
      builtinSignature: ENDPOINT_SIGNATURE,
    };
  }
  return undefined;
}

/**
 * An input as text compared with the stored ones: in the database's default
 * collation, which is deterministic (equal means the same bytes, as for the
 * service), whatever collation the input's column has; a nondeterministic one
 * (case- or accent-insensitive) would match another input's answer.
 */
function storedText(input: AstNode): string {
  return `((${deparse(input)})::text COLLATE "default")`;
}

function findWrapper(call: AstNode, catalog: MlCatalog): { fn: WrapperFunction; byPath: boolean } | undefined {
  const name = functionName(call);
  const args = call.args?.length ?? 0;
  const candidates = catalog.wrappers.filter(
    (w) =>
      w.name === name[name.length - 1] &&
      (name.length === 1 || w.schema === name[0]) &&
      args <= w.argTypes.length &&
      args >= w.argTypes.length - w.defaults.length,
  );
  // Unqualified, the name may mean a function of another schema: the first on the session's search_path, when
  // they all take the same argument types (else PostgreSQL picks by the arguments' types).
  if (name.length === 1 && candidates.some((w) => w.namesakes === 'other-schemas')) {
    const fn = firstOnPath(candidates, catalog.searchPath);
    return fn ? { fn, byPath: true } : undefined;
  }
  const [fn] = candidates;
  if (candidates.length !== 1 || fn.namesakes === 'same-schema') return undefined;
  return { fn, byPath: false };
}

/**
 * Of wrappers of one name in several schemas, the one PostgreSQL calls for the unqualified name: the first on the
 * search_path (pg_catalog first unless the path places it; never pg_temp), if every function of that name the
 * path reaches has its argument types.
 */
function firstOnPath(
  candidates: WrapperFunction[],
  searchPath: readonly string[] | undefined,
): WrapperFunction | undefined {
  if (!searchPath) return undefined;
  const path = (searchPath.includes('pg_catalog') ? searchPath : ['pg_catalog', ...searchPath]).filter(
    (schema) => schema !== 'pg_temp',
  );
  const position = (schema: string) => {
    const at = path.indexOf(schema);
    return at < 0 ? Number.POSITIVE_INFINITY : at;
  };
  const fn = [...candidates].sort((a, b) => position(a.schema) - position(b.schema))[0];
  // (namesakeSchemas is set only for namesakes of its signature in other schemas alone.)
  if (!fn || position(fn.schema) === Number.POSITIVE_INFINITY || !fn.namesakeSchemas) return undefined;
  return fn.namesakeSchemas.every((schema) => position(schema) > position(fn.schema)) ? fn : undefined;
}

/**
 * The wrapper's body with its parameters replaced by the call's arguments
 * (cast to the declared types), or their defaults where not given.
 */
function inlineWrapper(
  fn: WrapperFunction,
  args: (AstNode | undefined)[],
): { body: AstNode; values: AstNode[] } | undefined {
  if (!fn.bodyExpression) return undefined;
  const firstDefault = fn.argTypes.length - fn.defaults.length;
  if (args.some((a, i) => a === undefined && i < firstDefault)) return undefined;
  const values: AstNode[] = fn.argTypes.map((type, i) => {
    const given = args[i];
    const source = given ? `(${deparse(given)})` : `(${fn.defaults[i - firstDefault]})`;
    return parseExpression(`${source}::${type}`);
  });
  const body = clone(fn.bodyExpression);
  let unsupported = false;
  const replace = (holder: AstNode, key: string | number, node: AstNode) => {
    const named = parameterReference(node, fn.name, fn.argNames);
    if (named === 'unsupported') unsupported = true;
    else if (named) {
      // (A field of a composite parameter, `p.f`: the argument's field.)
      const value = clone(values[named.index]);
      holder[key] = named.field
        ? { A_Indirection: { arg: value, indirection: [{ String: { sval: named.field } }] } }
        : value;
      return;
    }
    const param = inner(node, 'ParamRef');
    if (param && param.number >= 1 && param.number <= values.length) holder[key] = clone(values[param.number - 1]);
  };
  const holder = { root: body };
  walk(holder, (node, parent, key) => {
    if (parent !== undefined && key !== undefined && (inner(node, 'ColumnRef') || inner(node, 'ParamRef'))) {
      replace(parent, key, node);
      return false;
    }
    return undefined;
  });
  if (unsupported) return undefined;
  return { body: holder.root, values };
}

const typedBodies = new WeakMap<WrapperFunction, AstNode>();

/**
 * The wrapper's body with each parameter a NULL of its declared type: its own ML calls, recognised as PostgreSQL
 * resolves them (`detect_sentiment(doc, 'en', max_rows)` with an integer parameter is the batch-size form).
 */
function typedBody(fn: WrapperFunction): AstNode {
  let body = typedBodies.get(fn);
  if (!body) {
    body =
      inlineWrapper(
        fn,
        fn.argTypes.map(() => ({ A_Const: { isnull: true } })),
      )?.body ?? fn.bodyExpression!;
    typedBodies.set(fn, body);
  }
  return body;
}

/**
 * Recognises an ML call: the builtin functions, or a wrapper whose body is a
 * single expression around exactly one of them (nested wrappers inlined too).
 */
export function recognizeMlCall(call: AstNode, catalog: MlCatalog, depth = 0): MlCall | undefined {
  const builtin = builtinCall(call, catalog.paramTypes);
  if (builtin) return builtin;
  if (depth > 4) return undefined;
  const found = findWrapper(call, catalog);
  const fn = found?.fn;
  const args =
    fn && (positional(call) ?? (fn.argNames.length === fn.argTypes.length ? byName(call, fn.argNames) : undefined));
  if (!found || !fn || !args) return undefined;
  const inlining = inlineWrapper(fn, args);
  if (!inlining) return undefined;
  const inlined = inlining.body;
  const innerCalls: { call: MlCall; node: AstNode }[] = [];
  walk({ root: inlined }, (node) => {
    const fnCall = inner(node, 'FuncCall');
    if (!fnCall) return undefined;
    const recognized = recognizeMlCall(fnCall, catalog, depth + 1);
    if (recognized) {
      innerCalls.push({ call: recognized, node: fnCall });
      return false;
    }
    return undefined;
  });
  // One call, or one call made several times alike (`CASE WHEN (f(doc)).sentiment = 'NEGATIVE' THEN
  // -(f(doc)).confidence …`, or a wrapper of such calls twice): each use reads the one answer.
  const alike =
    innerCalls.length > 1 &&
    innerCalls.every((c) => deparse({ FuncCall: c.node }) === deparse({ FuncCall: innerCalls[0].node }));
  if (innerCalls.length !== 1 && !alike) return undefined;
  if (mlCallsIn(typedBody(fn), catalog, depth) !== innerCalls.length) return undefined;
  const [{ call: mlCall }] = innerCalls;
  let nullWhen: string | undefined;
  if (fn.strict) {
    // (Its NULL test would make the nested call once more per row.)
    if (inlining.values.some((v) => mlCallsIn(v, catalog, depth) > 0)) return undefined;
    // (num_nulls, not IS NULL: a row whose fields are all NULL is not a NULL argument.)
    if (inlining.values.length > 0) {
      nullWhen = `pg_catalog.num_nulls(${inlining.values.map((v) => deparse(v)).join(', ')}) > 0`;
    }
  }
  const skipWhen = [nullWhen, mlCall.wrapper?.skipWhen].filter((w) => w !== undefined).join(' OR ') || undefined;
  // A nested wrapper resolves to its own builtin call; keep the outermost inlined expression, in which a
  // STRICT inner wrapper given a NULL is NULL where it stands.
  const innermost = mlCall.wrapper ? mlCall.wrapper.inlinedCall : mlCall.node;
  const nested = mlCall.wrapper;
  const expression = nested
    ? innerCalls.reduce(
        (body, use, i) =>
          replaceNode(body, use.node, nullAt(nested.nullWhen, i === 0 ? nested.inlined : clone(nested.inlined))),
        inlined,
      )
    : inlined;
  return {
    ...mlCall,
    node: call,
    label: `${fn.schema}.${fn.name}`,
    wrapper: {
      fn,
      inlined: expression,
      inlinedCall: innermost,
      values: [...inlining.values, ...(mlCall.wrapper?.values ?? [])],
      chain: [fn, ...(mlCall.wrapper?.chain ?? [])],
      byPath: [...(found.byPath ? [fn] : []), ...(mlCall.wrapper?.byPath ?? [])],
      nullWhen,
      skipWhen,
    },
  };
}

/**
 * The ML calls in an expression, nested ones included. A wrapper body whose
 * call's input is another call (`f((f(doc)).sentiment || doc)`) is not
 * inlined, since the inner call would stay in the join condition and run
 * once per pair of row and stored answer.
 */
function mlCallsIn(expression: AstNode, catalog: MlCatalog, depth: number): number {
  let count = 0;
  walk({ root: expression }, (node) => {
    const call = inner(node, 'FuncCall');
    if (call && recognizeMlCall(call, catalog, depth + 1)) count += 1;
    return undefined;
  });
  return count;
}

/** `CASE WHEN <test> THEN NULL ELSE <expression> END`, keeping the expression's nodes (found by identity later). */
function nullAt(test: string | undefined, expression: AstNode): AstNode {
  if (!test) return expression;
  return {
    CaseExpr: {
      args: [{ CaseWhen: { expr: parseExpression(test), result: { A_Const: { isnull: true } } } }],
      defresult: expression,
    },
  };
}

/** A copy of `root` in which the FuncCall object `target` (found by identity) is replaced by `replacement`. */
export function replaceNode(root: AstNode, target: AstNode, replacement: AstNode): AstNode {
  const holder = { root };
  walk(holder, (node, parent, key) => {
    if (parent !== undefined && key !== undefined && inner(node, 'FuncCall') === target) {
      (parent as AstNode)[key] = replacement;
      return false;
    }
    return undefined;
  });
  return holder.root;
}

/**
 * SQL that is true when the current user may make this call as PostgreSQL
 * would check it: EXECUTE (and schema USAGE) on every function on the way,
 * with the owner's rights below a SECURITY DEFINER wrapper.
 */
export function privilegeCheck(call: MlCall): string {
  const checks: string[] = [];
  let role = 'current_user';
  // OIDs looked up in the catalog (no name resolution, so no permission error);
  // a missing function or schema gives NULL, treated as "no".
  // (Every function, operator and type named with its schema: the check runs in the client's session, whose
  // search_path may put a function of the user's own, `has_function_privilege` that says yes, before pg_catalog.)
  const literal = quoteLiteralAnyStrings;
  const schemaOid = (schema: string) =>
    `(SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) ${literal(schema)}::pg_catalog.name)`;
  for (const fn of call.wrapper?.chain ?? []) {
    checks.push(`pg_catalog.has_schema_privilege(${role}, ${schemaOid(fn.schema)}, 'USAGE')`);
    checks.push(`pg_catalog.has_function_privilege(${role}, ${fn.oid}::pg_catalog.oid, 'EXECUTE')`);
    if (fn.securityDefiner) role = `${literal(fn.owner)}::pg_catalog.name`;
  }
  const builtin = call.builtinSignature;
  const builtinOid = `(SELECT p.oid FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) ${schemaOid(builtin.schema)} AND p.proname OPERATOR(pg_catalog.=) ${literal(builtin.name)}::pg_catalog.name AND p.proargtypes OPERATOR(pg_catalog.=) ${literal(builtin.argTypes)}::pg_catalog.oidvector)`;
  checks.push(`pg_catalog.has_schema_privilege(${role}, ${schemaOid(builtin.schema)}, 'USAGE')`);
  checks.push(`pg_catalog.has_function_privilege(${role}, ${builtinOid}, 'EXECUTE')`);
  return `COALESCE(${checks.join(' AND ')}, false)`;
}

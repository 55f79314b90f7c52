import { booleanShown } from '../util/pg-boolean.js';
import { type ScanToken, scan } from './parser.js';

/**
 * Text rewrites the gateway applies before PostgreSQL sees a statement. They
 * work on the real PostgreSQL lexer's tokens and splice the original bytes, so
 * everything else (comments, formatting, literals) reaches the server as written.
 */

export interface Edit {
  start: number;
  end: number;
  text: string;
}

const IDENT = 'IDENT';

function identName(token: ScanToken): string | undefined {
  if (token.tokenName !== IDENT) return undefined;
  return token.text.startsWith('"') ? token.text.slice(1, -1).replace(/""/g, '"') : token.text.toLowerCase();
}

/** The text with each edit's byte range replaced (token offsets are bytes of the UTF-8 text). */
export function applyEdits(bytes: Buffer, edits: Edit[]): string {
  if (edits.length === 0) return bytes.toString('utf8');
  edits.sort((a, b) => a.start - b.start);
  const parts: Buffer[] = [];
  let pos = 0;
  for (const edit of edits) {
    parts.push(bytes.subarray(pos, edit.start), Buffer.from(edit.text));
    pos = edit.end;
  }
  parts.push(bytes.subarray(pos));
  return Buffer.concat(parts).toString('utf8');
}

const DOLLAR_QUOTE = /^\$([A-Za-z_\u0080-\uffff][A-Za-z_0-9\u0080-\uffff]*)?\$/;

const isComment = (t: ScanToken) => t.tokenName === 'SQL_COMMENT' || t.tokenName === 'C_COMMENT';

/**
 * Which string constants are code rather than data: the body of CREATE
 * FUNCTION / PROCEDURE (the string after a top-level AS) and of a DO block.
 * Decided statement by statement, so `SELECT $$…$$` stays data even next to a
 * CREATE FUNCTION in the same query string. (The tokens come without comments.)
 */
function codeStringTokens(tokens: ScanToken[]): Set<number> {
  const code = new Set<number>();
  let start = 0;
  while (start < tokens.length) {
    let end = start;
    let depth = 0;
    while (end < tokens.length && !(tokens[end].text === ';' && depth === 0)) {
      if (tokens[end].text === '(') depth += 1;
      else if (tokens[end].text === ')') depth -= 1;
      end += 1;
    }
    const words = tokens.slice(start, end);
    const upper = words.map((t) => t.text.toUpperCase());
    const isRoutine =
      upper[0] === 'CREATE' &&
      (upper[1] === 'FUNCTION' ||
        upper[1] === 'PROCEDURE' ||
        (upper[1] === 'OR' && upper[2] === 'REPLACE' && (upper[3] === 'FUNCTION' || upper[3] === 'PROCEDURE')));
    if (isRoutine || upper[0] === 'DO') {
      let level = 0;
      for (let i = 0; i < words.length; i++) {
        const word = words[i];
        if (word.text === '(') level += 1;
        else if (word.text === ')') level -= 1;
        if (level !== 0 || word.tokenName !== 'SCONST') continue;
        const previous = upper[i - 1];
        const body =
          upper[0] === 'DO'
            ? previous === 'DO' || upper[i - 2] === 'LANGUAGE' || previous !== 'LANGUAGE'
            : previous === 'AS';
        if (body) code.add(start + i);
        if (upper[0] === 'DO' && body) break;
      }
    }
    start = end + 1;
  }
  return code;
}

const ROUTINE_WORDS = new Set(['FUNCTION', 'FUNCTIONS', 'PROCEDURE', 'ROUTINE', 'AGGREGATE']);
/** Words before FUNCTION… where it names routines: ON FUNCTION, DROP/ALTER/ADD/CREATE [OR REPLACE] FUNCTION, WITH FUNCTION. */
const ROUTINE_NAMERS = new Set(['ON', 'DROP', 'ALTER', 'ADD', 'CREATE', 'REPLACE', 'WITH']);

/** The upper-case word before tokens[index] (the tokens are without comments). */
const previousWord = (tokens: ScanToken[], index: number) => tokens[index - 1]?.text.toUpperCase() ?? '';

/**
 * Whether the routine word at tokens[index] names routines: it follows one of
 * ROUTINE_NAMERS, itself not a column or alias (`t.drop function`, `SELECT
 * add function` name a column `function`).
 */
function namesRoutines(tokens: ScanToken[], index: number): boolean {
  if (!ROUTINE_NAMERS.has(previousWord(tokens, index))) return false;
  return !['.', ',', '(', 'SELECT', 'DISTINCT', 'AS'].includes(previousWord(tokens, index - 1));
}

/**
 * Whether the (possibly schema-qualified) name starting at tokens[start] is a
 * routine named by its signature, not called: it follows FUNCTION, ROUTINE,
 * PROCEDURE… directly or through a comma-separated list of other signatures
 * (GRANT … ON FUNCTION a(int), b(…); DROP FUNCTION IF EXISTS …; ALTER, COMMENT
 * ON, CREATE CAST … WITH FUNCTION), also inside a function or DO body.
 */
function namedBySignature(tokens: ScanToken[], start: number): boolean {
  let depth = 0;
  for (let j = start - 1; j >= 0; j--) {
    const token = tokens[j];
    if (token.text === ')') depth += 1;
    else if (token.text === '(') {
      if (depth === 0) return false;
      depth -= 1;
    } else if (depth === 0) {
      const word = token.text.toUpperCase();
      // (A column or alias named so is no routine word: one names a routine after these.)
      if (ROUTINE_WORDS.has(word)) return namesRoutines(tokens, j);
      if (!(token.text === ',' || token.text === '.' || word === 'IF' || word === 'EXISTS' || identName(token))) {
        return false;
      }
    }
  }
  return false;
}

/**
 * Packs the model inputs of every `aws_sagemaker.invoke_endpoint(name, batch, a, b, …)`
 * call into `json_build_array(a, b, …)`, including calls inside function bodies,
 * view definitions and DO blocks; and maps Aurora's `apg_enable_function_migration`
 * setting onto the gateway's `aws_ml.enable_function_migration`.
 * Returns the text unchanged when nothing applies or it does not lex.
 */
export function rewriteStatementText(sql: string): string {
  if (!/invoke_endpoint|apg_enable_function_migration/i.test(sql)) return sql;
  // (Comments go: `aws_sagemaker /* … */ .invoke_endpoint (…)` is the same call. Edits use byte offsets.)
  const tokens = scan(sql)?.filter((t) => !isComment(t));
  if (!tokens) return sql;
  const bytes = Buffer.from(sql);
  const edits: Edit[] = [];
  const codeStrings = codeStringTokens(tokens);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    const name = identName(token);
    if (name === 'invoke_endpoint' && tokens[i + 1]?.text === '(') {
      const qualifier = tokens[i - 1]?.text === '.' ? identName(tokens[i - 2]) : 'aws_sagemaker';
      if (qualifier === 'aws_sagemaker' && !namedBySignature(tokens, tokens[i - 1]?.text === '.' ? i - 2 : i)) {
        const edit = packInvokeArguments(tokens, i + 1);
        if (edit) edits.push(...edit);
        const start = tokens[i - 1]?.text === '.' ? i - 2 : i;
        const cast = castToRecordType(tokens, start, matchingParen(tokens, i + 1));
        if (cast) edits.push(...cast);
      }
    } else if (name === 'apg_enable_function_migration') {
      edits.push({ start: token.start, end: token.end, text: 'aws_ml.enable_function_migration' });
      const value = booleanSettingValue(tokens, i + 1);
      if (value) edits.push(value);
    } else if (token.tokenName === 'SCONST' && settingNameArgument(tokens, i)) {
      edits.push({ start: token.start, end: token.end, text: "'aws_ml.enable_function_migration'" });
      // set_config's value too, when it is a plain literal.
      const value =
        tokens[i + 1]?.text === ',' && tokens[i + 2]?.tokenName === 'SCONST' ? booleanValue(tokens[i + 2]) : undefined;
      if (value) edits.push({ ...value, text: `'${value.text}'` });
    } else if (token.tokenName === 'SCONST' && /invoke_endpoint|apg_enable_function_migration/i.test(token.text)) {
      const edit = codeStrings.has(i) ? rewriteStringConstant(token) : undefined;
      if (edit) edits.push(edit);
    }
  }
  return applyEdits(bytes, edits);
}

/**
 * A SET's boolean value written as PostgreSQL shows its own boolean settings (`on`, `off`): Aurora's setting is
 * one, while the gateway's stands for it as a placeholder that keeps the text given (`false`, `'yes'`, `0`).
 * `at` is the token after the setting's name; undefined unless `= value` or `TO value` follows, a single value.
 */
function booleanSettingValue(tokens: ScanToken[], at: number): Edit | undefined {
  const assigns = tokens[at]?.text === '=' || tokens[at]?.text.toLowerCase() === 'to';
  // (What may follow a SET's value: the statement's end, or CREATE FUNCTION's and ALTER ROLE's next clause; a
  // comma makes it a list, which is not a boolean.)
  return assigns && tokens[at + 2]?.text !== ',' ? booleanValue(tokens[at + 1]) : undefined;
}

/** A boolean value's token written as PostgreSQL shows a boolean setting, `on` or `off` (else undefined). */
function booleanValue(value: ScanToken | undefined): Edit | undefined {
  if (!value) return undefined;
  const quotedIdentifier = value.tokenName === IDENT && value.text.startsWith('"');
  const text =
    value.tokenName === 'SCONST' ? unquoted(value.text) : quotedIdentifier ? value.text.slice(1, -1) : value.text;
  const shown = text === undefined || text.toLowerCase() === 'default' ? undefined : booleanShown(text);
  return shown === undefined ? undefined : { start: value.start, end: value.end, text: shown };
}

/** A plain 'text' literal's value (undefined for E'', U&'' or dollar quoting). */
const unquoted = (text: string): string | undefined =>
  text.startsWith("'") ? text.slice(1, -1).replace(/''/g, "'") : undefined;

/** Tokens[at] is 'apg_enable_function_migration' as current_setting's or set_config's first argument. */
function settingNameArgument(tokens: ScanToken[], at: number): boolean {
  if (unquoted(tokens[at].text)?.toLowerCase() !== 'apg_enable_function_migration') return false;
  if (tokens[at - 1]?.text !== '(') return false;
  const fn = tokens[at - 2] && identName(tokens[at - 2]);
  const qualifier = tokens[at - 3]?.text === '.' ? identName(tokens[at - 4]) : 'pg_catalog';
  return qualifier === 'pg_catalog' && (fn === 'current_setting' || fn === 'set_config');
}

/** Rewrites the SQL inside a function or DO body, dollar-quoted or single-quoted. */
function rewriteStringConstant(token: ScanToken): Edit | undefined {
  const dollar = DOLLAR_QUOTE.exec(token.text);
  if (dollar) {
    const tag = dollar[0];
    const inner = token.text.slice(tag.length, token.text.length - tag.length);
    const rewritten = rewriteStatementText(inner);
    return rewritten === inner ? undefined : { start: token.start, end: token.end, text: tag + rewritten + tag };
  }
  const inner = unquoted(token.text);
  if (inner !== undefined) {
    const rewritten = rewriteStatementText(inner);
    if (rewritten === inner) return undefined;
    return { start: token.start, end: token.end, text: `'${rewritten.replace(/'/g, "''")}'` };
  }
  return undefined;
}

/** For the call whose "(" is tokens[open]: the edits that wrap the third and later arguments. */
function packInvokeArguments(tokens: ScanToken[], open: number): Edit[] | undefined {
  let depth = 0;
  const argumentStarts: number[] = [];
  let close = -1;
  for (let j = open; j < tokens.length; j++) {
    const text = tokens[j].text;
    if (text === '(' || text === '[') {
      depth += 1;
      if (depth === 1 && text === '(') argumentStarts.push(j + 1);
    } else if (text === ')' || text === ']') {
      depth -= 1;
      if (depth === 0) {
        close = j;
        break;
      }
    } else if (text === ',' && depth === 1) {
      argumentStarts.push(j + 1);
    }
  }
  if (close < 0 || argumentStarts.length < 2) return undefined;
  const closeToken = tokens[close];
  if (argumentStarts.length === 2) {
    // No model inputs at all: send an empty row.
    return [{ start: closeToken.start, end: closeToken.start, text: `, ${PACKER}()` }];
  }
  const third = tokens[argumentStarts[2]];
  const packer = packerParen(tokens, argumentStarts[2]);
  const alreadyPacked =
    argumentStarts.length === 3 && packer !== undefined && matchingParen(tokens, packer) === close - 1;
  if (alreadyPacked) return undefined;
  return [
    // (Qualified: a user's json_build_array of exact argument types would be PostgreSQL's better match.)
    { start: third.start, end: third.start, text: `${PACKER}(` },
    { start: closeToken.start, end: closeToken.start, text: ')' },
  ];
}

/** The function that packs invoke_endpoint's model inputs into one json argument. */
const PACKER = 'pg_catalog.json_build_array';

/** The index of the "(" of a `json_build_array(` or `pg_catalog.json_build_array(` starting at tokens[at]. */
function packerParen(tokens: ScanToken[], at: number): number | undefined {
  const qualified = identName(tokens[at]) === 'pg_catalog' && tokens[at + 1]?.text === '.';
  const name = qualified ? at + 2 : at;
  if (!tokens[name] || identName(tokens[name]) !== 'json_build_array' || tokens[name + 1]?.text !== '(')
    return undefined;
  return name + 1;
}

/** Type names an endpoint's text answer casts to directly; anything else may be a composite type. */
const SCALAR_TYPES = new Set([
  'int',
  'int2',
  'int4',
  'int8',
  'integer',
  'smallint',
  'bigint',
  'real',
  'float',
  'float4',
  'float8',
  'double',
  'numeric',
  'decimal',
  'text',
  'varchar',
  'character',
  'char',
  'bpchar',
  'bool',
  'boolean',
  'date',
  'time',
  'timestamp',
  'timestamptz',
  'interval',
  'json',
  'jsonb',
  'uuid',
  'bytea',
  'money',
  'point',
  'name',
  'varying',
  'precision',
]);

/**
 * `(invoke_endpoint(…))::some_type` where some_type is not a builtin scalar:
 * a multi-value answer such as `0.12,0.98` only becomes a composite value
 * with parentheses around it, so the cast goes through
 * `aws_sagemaker.cast_output(…, NULL::some_type)`, which adds them for
 * composite types and casts directly otherwise.
 */
function castToRecordType(tokens: ScanToken[], callStart: number, callEnd: number): Edit[] | undefined {
  if (callEnd < 0) return undefined;
  let start = callStart;
  let end = callEnd;
  while (tokens[start - 1]?.text === '(' && tokens[end + 1]?.text === ')') {
    start -= 1;
    end += 1;
  }
  if (tokens[end + 1]?.text !== '::') return undefined;
  let typeEnd = end + 2;
  const first = tokens[typeEnd];
  if (!first || first.tokenName !== IDENT || SCALAR_TYPES.has(identName(first) ?? '')) return undefined;
  while (tokens[typeEnd + 1]?.text === '.' && tokens[typeEnd + 2]?.tokenName === IDENT) typeEnd += 2;
  if (tokens[typeEnd + 1]?.text === '[') return undefined;
  return [
    { start: tokens[start].start, end: tokens[start].start, text: 'aws_sagemaker.cast_output(' },
    { start: tokens[end + 1].start, end: tokens[end + 1].end, text: ', NULL::' },
    { start: tokens[typeEnd].end, end: tokens[typeEnd].end, text: ')' },
  ];
}

function matchingParen(tokens: ScanToken[], open: number): number {
  let depth = 0;
  for (let j = open; j < tokens.length; j++) {
    if (tokens[j].text === '(') depth += 1;
    else if (tokens[j].text === ')' && --depth === 0) return j;
  }
  return -1;
}

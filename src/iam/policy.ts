/**
 * IAM identity-based policy documents: the grammar IAM accepts (Version,
 * Statement with Sid, Effect, Action/NotAction, Resource/NotResource) and
 * evaluation as IAM does it for one principal's policies: a request is denied
 * unless some statement allows it, and an explicit Deny always wins.
 *
 * Conditions are refused rather than ignored: ignoring a Condition on an Allow
 * would grant more than the administrator wrote.
 */

export type Effect = 'Allow' | 'Deny';

export interface PolicyStatement {
  Sid?: string;
  Effect: Effect;
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
}

export interface PolicyDocument {
  Version?: string;
  Id?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

/** One problem in a document, at a path below the document (e.g. ['Statement', 2, 'Effect']). */
export interface PolicyIssue {
  path: (string | number)[];
  message: string;
}

export const POLICY_VERSIONS = ['2012-10-17', '2008-10-17'];

const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Action', 'NotAction', 'Resource', 'NotResource']);
const ACTION_PATTERN = /^(\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+)$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks a value against IAM's policy grammar; returns every problem found (empty when valid). */
export function validatePolicy(document: unknown): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  if (!isRecord(document)) return [{ path: [], message: 'must be a policy document (a JSON object)' }];
  for (const key of Object.keys(document)) {
    if (!['Version', 'Id', 'Statement'].includes(key)) {
      issues.push({ path: [key], message: 'is not a policy element (expected Version, Id, Statement)' });
    }
  }
  if (document.Version !== undefined && !POLICY_VERSIONS.includes(document.Version as string)) {
    issues.push({ path: ['Version'], message: `must be "2012-10-17" (or the older "2008-10-17")` });
  }
  if (document.Id !== undefined && typeof document.Id !== 'string') {
    issues.push({ path: ['Id'], message: 'must be a string' });
  }
  const statements = document.Statement;
  if (statements === undefined) {
    issues.push({ path: ['Statement'], message: 'is required' });
  } else if (Array.isArray(statements)) {
    if (statements.length === 0) issues.push({ path: ['Statement'], message: 'must contain at least one statement' });
    const sids = new Map<string, number>();
    statements.forEach((statement, index) => {
      validateStatement(statement, ['Statement', index], issues);
      const sid = isRecord(statement) ? statement.Sid : undefined;
      if (typeof sid === 'string' && sid !== '') {
        if (sids.has(sid)) {
          issues.push({
            path: ['Statement', index, 'Sid'],
            message: `"${sid}" is already used by Statement[${sids.get(sid)}]; Sids must be unique`,
          });
        } else {
          sids.set(sid, index);
        }
      }
    });
  } else {
    validateStatement(statements, ['Statement'], issues);
  }
  return issues;
}

function validateStatement(statement: unknown, path: (string | number)[], issues: PolicyIssue[]): void {
  if (!isRecord(statement)) {
    issues.push({ path, message: 'must be a statement (a JSON object)' });
    return;
  }
  for (const key of Object.keys(statement)) {
    if (STATEMENT_KEYS.has(key)) continue;
    const message =
      key === 'Principal' || key === 'NotPrincipal'
        ? 'is not allowed in a role policy (an identity-based policy names no principal)'
        : key === 'Condition'
          ? 'is not supported by pgsage; express the restriction with Action and Resource'
          : 'is not a statement element (expected Sid, Effect, Action, NotAction, Resource, NotResource)';
    issues.push({ path: [...path, key], message });
  }
  if (statement.Sid !== undefined && (typeof statement.Sid !== 'string' || !/^[A-Za-z0-9]*$/.test(statement.Sid))) {
    issues.push({ path: [...path, 'Sid'], message: 'must contain only letters and digits' });
  }
  if (statement.Effect !== 'Allow' && statement.Effect !== 'Deny') {
    issues.push({ path: [...path, 'Effect'], message: 'must be Allow or Deny' });
  }
  validateChoice(statement, path, 'Action', 'NotAction', issues, (value) =>
    ACTION_PATTERN.test(value)
      ? undefined
      : `"${value}" is not an action; write service:Action, e.g. sagemaker:InvokeEndpoint (wildcards * and ? allowed)`,
  );
  validateChoice(statement, path, 'Resource', 'NotResource', issues, (value) =>
    value === '*' || /^arn:[^:]*:[^:]*:[^:]*:[^:]*:.+$/.test(value)
      ? undefined
      : `"${value}" is not a resource; write * or an ARN such as arn:aws:sagemaker:us-east-1:123456789012:endpoint/name`,
  );
}

function validateChoice(
  statement: Record<string, unknown>,
  path: (string | number)[],
  positive: string,
  negative: string,
  issues: PolicyIssue[],
  check: (value: string) => string | undefined,
): void {
  const has = (key: string) => statement[key] !== undefined;
  if (has(positive) && has(negative)) {
    issues.push({ path: [...path, negative], message: `cannot be used together with ${positive}` });
    return;
  }
  if (!has(positive) && !has(negative)) {
    issues.push({ path: [...path, positive], message: `is required (or ${negative})` });
    return;
  }
  const key = has(positive) ? positive : negative;
  const value = statement[key];
  const values = Array.isArray(value) ? value : [value];
  if (Array.isArray(value) && value.length === 0) {
    issues.push({ path: [...path, key], message: 'must not be empty' });
    return;
  }
  values.forEach((item, index) => {
    const at = Array.isArray(value) ? [...path, key, index] : [...path, key];
    if (typeof item !== 'string') {
      issues.push({ path: at, message: 'must be a string' });
      return;
    }
    const problem = check(item);
    if (problem) issues.push({ path: at, message: problem });
  });
}

// ---------------------------------------------------------------- matching

/** Action names match without regard to case, with * and ? wildcards. */
export function actionMatches(pattern: string, action: string): boolean {
  return compiled(`a\u0000${pattern}`, () => globRegExp(pattern, '.', true)).test(action);
}

/**
 * Patterns compiled once: a batch statement authorizes every service request
 * (40,000 for a million documents) against the same few policy patterns.
 * Bounded, since patterns come from policies anyone with access may write.
 */
const compiledPatterns = new Map<string, RegExp>();

function compiled(key: string, compile: () => RegExp): RegExp {
  let pattern = compiledPatterns.get(key);
  if (!pattern) {
    if (compiledPatterns.size >= 1000) compiledPatterns.clear();
    pattern = compile();
    compiledPatterns.set(key, pattern);
  }
  return pattern;
}

/**
 * Resource ARNs match case-sensitively, segment by segment. A wildcard stays
 * within its colon-separated segment, except a * that ends a segment or sits in
 * the resource part, which may run on (IAM's rule). "*" alone matches anything.
 */
export function resourceMatches(pattern: string, resource: string): boolean {
  if (pattern === '*') return true;
  return compiled(`r\u0000${pattern}`, () => resourceRegExp(pattern)).test(resource);
}

function resourceRegExp(pattern: string): RegExp {
  const segments = splitArn(pattern);
  const source = segments
    .map((segment, index) => {
      const isResource = index >= 5;
      let out = '';
      for (let i = 0; i < segment.length; i++) {
        const c = segment[i];
        if (c === '*') out += isResource || i === segment.length - 1 ? '.*' : '[^:]*';
        else if (c === '?') out += isResource ? '.' : '[^:]';
        else out += escapeRegExp(c);
      }
      return out;
    })
    .join(':');
  return new RegExp(`^${source}$`, 's');
}

/** arn:partition:service:region:account:resource — the resource part keeps its own colons. */
export function splitArn(arn: string): string[] {
  const parts = arn.split(':');
  return parts.length <= 6 ? parts : [...parts.slice(0, 5), parts.slice(5).join(':')];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function globRegExp(pattern: string, any: string, ignoreCase: boolean): RegExp {
  let source = '';
  for (const c of pattern) {
    if (c === '*') source += `${any}*`;
    else if (c === '?') source += any;
    else source += escapeRegExp(c);
  }
  return new RegExp(`^${source}$`, ignoreCase ? 'is' : 's');
}

// ---------------------------------------------------------------- evaluation

export type Decision =
  | { decision: 'allowed'; statement: StatementRef }
  | { decision: 'explicitDeny'; statement: StatementRef }
  | { decision: 'implicitDeny' };

/** Which statement decided: its index in the document and its Sid, if any. */
export interface StatementRef {
  policy: number;
  index: number;
  sid?: string;
}

const list = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

function statementsOf(document: PolicyDocument): PolicyStatement[] {
  return Array.isArray(document.Statement) ? document.Statement : [document.Statement];
}

function statementApplies(statement: PolicyStatement, action: string, resource: string): boolean {
  const actionOk =
    statement.Action !== undefined
      ? list(statement.Action).some((p) => actionMatches(p, action))
      : !list(statement.NotAction).some((p) => actionMatches(p, action));
  if (!actionOk) return false;
  return statement.Resource !== undefined
    ? list(statement.Resource).some((p) => resourceMatches(p, resource))
    : !list(statement.NotResource).some((p) => resourceMatches(p, resource));
}

/**
 * Evaluates a request against a principal's (already validated) policies:
 * explicit Deny in any statement → denied; else an Allow → allowed; else
 * denied by default.
 */
export function evaluate(policies: PolicyDocument[], action: string, resource: string): Decision {
  let allowedBy: StatementRef | undefined;
  for (let p = 0; p < policies.length; p++) {
    const statements = statementsOf(policies[p]);
    for (let index = 0; index < statements.length; index++) {
      const statement = statements[index];
      if (!statementApplies(statement, action, resource)) continue;
      const ref: StatementRef = { policy: p, index, ...(statement.Sid ? { sid: statement.Sid } : {}) };
      if (statement.Effect === 'Deny') return { decision: 'explicitDeny', statement: ref };
      allowedBy ??= ref;
    }
  }
  return allowedBy ? { decision: 'allowed', statement: allowedBy } : { decision: 'implicitDeny' };
}

/** Formats a path below a document as IAM users read it: Statement[2].Effect. */
export function formatPath(path: (string | number)[]): string {
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? key : `.${key}`)).join('');
}

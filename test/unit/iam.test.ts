/**
 * IAM-style roles and policies: the grammar, evaluation as IAM does it, the
 * configuration's checks, the authorizer every ML call from the database goes
 * through, and `pgsage iam`.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerIamCommands } from '../../src/cli/iam.js';
import { ConfigError, type ConfigInput, configSchema, loadConfig } from '../../src/config/index.js';
import { AuthorizedMlServices } from '../../src/iam/authorized-services.js';
import { ServiceAuthorizer } from '../../src/iam/authorizer.js';
import { actionMatches, evaluate, type PolicyDocument, resourceMatches, validatePolicy } from '../../src/iam/policy.js';
import { resolveIam } from '../../src/iam/roles.js';
import type { MlServices } from '../../src/ml/client.js';
import { SqlError } from '../../src/util/errors.js';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const SAGEMAKER_ROLE = `arn:aws:iam::${ACCOUNT}:role/AllowAuroraSageMakerRole`;
const COMPREHEND_ROLE = `arn:aws:iam::${ACCOUNT}:role/AllowAuroraComprehendRole`;
const S3_ROLE = `arn:aws:iam::${ACCOUNT}:role/AllowAuroraS3Role`;
const endpointArn = (name: string, region = REGION) => `arn:aws:sagemaker:${region}:${ACCOUNT}:endpoint/${name}`;

describe('policy grammar', () => {
  it("accepts the documents of Aurora's documentation", () => {
    expect(
      validatePolicy({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'AllowAuroraToInvokeRCFEndPoint',
            Effect: 'Allow',
            Action: 'sagemaker:InvokeEndpoint',
            Resource: 'arn:aws:sagemaker:region:123456789012:endpoint/endpointName',
          },
        ],
      }),
    ).toEqual([]);
    expect(
      validatePolicy({
        Version: '2012-10-17',
        Statement: {
          Sid: 'AllowAuroraToInvokeComprehendDetectSentiment',
          Effect: 'Allow',
          Action: ['comprehend:DetectSentiment', 'comprehend:BatchDetectSentiment'],
          Resource: '*',
        },
      }),
    ).toEqual([]);
  });

  it('points at each problem', () => {
    const issues = validatePolicy({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 's3:PutObject', Resource: 'arn:aws:s3:::bucket/*' },
        { Sid: 'has space', Effect: 'Allow', Action: 'InvokeEndpoint', Resource: 'endpoint/x' },
        { Effect: 'allow', Action: 's3:*', NotAction: 's3:Get*', Resource: '*' },
        { Effect: 'Deny', Resource: '*', Principal: '*', Condition: {} },
        { Effect: 'Allow', Action: [], NotResource: ['*', 3] },
      ],
    });
    expect(issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'Statement.1.Sid: must contain only letters and digits',
      'Statement.1.Action: "InvokeEndpoint" is not an action; write service:Action, e.g. sagemaker:InvokeEndpoint (wildcards * and ? allowed)',
      'Statement.1.Resource: "endpoint/x" is not a resource; write * or an ARN such as arn:aws:sagemaker:us-east-1:123456789012:endpoint/name',
      'Statement.2.Effect: must be Allow or Deny',
      'Statement.2.NotAction: cannot be used together with Action',
      'Statement.3.Principal: is not allowed in a role policy (an identity-based policy names no principal)',
      'Statement.3.Condition: is not supported by pgsage; express the restriction with Action and Resource',
      'Statement.3.Action: is required (or NotAction)',
      'Statement.4.Action: must not be empty',
      'Statement.4.NotResource.1: must be a string',
    ]);
    expect(validatePolicy({ Version: '2021-01-01', Statement: [], Extra: 1 }).map((i) => i.path.join('.'))).toEqual([
      'Extra',
      'Version',
      'Statement',
    ]);
    expect(
      validatePolicy({
        Statement: [
          { Sid: 'A', Effect: 'Allow', Action: '*', Resource: '*' },
          { Sid: 'A', Effect: 'Deny', Action: '*', Resource: '*' },
        ],
      })[0].message,
    ).toMatch(/already used by Statement\[0\]/);
  });
});

describe('matching', () => {
  it('matches actions without regard to case, with wildcards', () => {
    expect(actionMatches('sagemaker:InvokeEndpoint', 'sagemaker:invokeendpoint')).toBe(true);
    expect(actionMatches('SAGEMAKER:Invoke*', 'sagemaker:InvokeEndpoint')).toBe(true);
    expect(actionMatches('comprehend:*Sentiment', 'comprehend:BatchDetectSentiment')).toBe(true);
    expect(actionMatches('comprehend:Detect?entiment', 'comprehend:DetectSentiment')).toBe(true);
    expect(actionMatches('comprehend:DetectSentiment', 'comprehend:BatchDetectSentiment')).toBe(false);
    expect(actionMatches('s3:*', 'sagemaker:InvokeEndpoint')).toBe(false);
    expect(actionMatches('*', 'anything:At-all')).toBe(true);
  });

  it('matches resource ARNs case-sensitively, wildcards staying within their segment', () => {
    const churn = 'arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn-*';
    expect(resourceMatches(churn, endpointArn('churn-xgb'))).toBe(true);
    expect(resourceMatches(churn, endpointArn('fraud-xgb'))).toBe(false);
    expect(resourceMatches(churn, endpointArn('churn-xgb', 'eu-west-1'))).toBe(false);
    expect(resourceMatches('arn:aws:sagemaker:us-east-1:123456789012:endpoint/Churn-*', endpointArn('churn-a'))).toBe(
      false,
    );
    expect(resourceMatches('arn:aws:sagemaker:*:123456789012:endpoint/*', endpointArn('x', 'eu-west-1'))).toBe(true);
    expect(resourceMatches('arn:aws:sagemaker:us-?ast-1:*:endpoint/x', endpointArn('x'))).toBe(true);
    // A * in the middle of a segment does not run into the next one; one that ends a segment may.
    expect(resourceMatches('arn:aws:sagemaker:us*1:123456789012:endpoint/x', endpointArn('x'))).toBe(true);
    expect(resourceMatches('arn:aws:sagemaker:u*2:endpoint/x', endpointArn('x'))).toBe(false);
    expect(resourceMatches('arn:aws:sagemaker:*', endpointArn('x'))).toBe(true);
    expect(resourceMatches('arn:aws:s3:::exports/*', 'arn:aws:s3:::exports/2024/a.csv')).toBe(true);
    expect(resourceMatches('arn:aws:s3:::exports/*', 'arn:aws:s3:::exports-other/a.csv')).toBe(false);
    expect(resourceMatches('arn:aws:s3:::exports', 'arn:aws:s3:::exports/a.csv')).toBe(false);
    expect(resourceMatches('*', 'arn:aws:s3:::anything')).toBe(true);
    // Regular-expression characters in ARNs are literal.
    expect(resourceMatches('arn:aws:s3:::a.b/c', 'arn:aws:s3:::aXb/c')).toBe(false);
  });
});

describe('evaluation', () => {
  const policy: PolicyDocument = {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Churn', Effect: 'Allow', Action: 'sagemaker:InvokeEndpoint', Resource: endpointArn('churn-*') },
      { Sid: 'NotTheBeta', Effect: 'Deny', Action: 'sagemaker:*', Resource: endpointArn('churn-beta') },
      { Sid: 'AllButDelete', Effect: 'Allow', NotAction: 's3:Delete*', Resource: 'arn:aws:s3:::exports/*' },
      { Sid: 'NothingOutsideExports', Effect: 'Deny', Action: 's3:*', NotResource: ['arn:aws:s3:::exports/*'] },
    ],
  };
  const decide = (action: string, resource: string) => evaluate([policy], action, resource);

  it('allows what a statement allows', () => {
    expect(decide('sagemaker:InvokeEndpoint', endpointArn('churn-xgb'))).toEqual({
      decision: 'allowed',
      statement: { policy: 0, index: 0, sid: 'Churn' },
    });
    expect(decide('s3:PutObject', 'arn:aws:s3:::exports/a.csv').decision).toBe('allowed');
  });

  it('denies by default', () => {
    expect(decide('sagemaker:InvokeEndpoint', endpointArn('fraud'))).toEqual({ decision: 'implicitDeny' });
    expect(decide('comprehend:BatchDetectSentiment', '*')).toEqual({ decision: 'implicitDeny' });
    expect(decide('s3:DeleteObject', 'arn:aws:s3:::exports/a.csv').decision).toBe('implicitDeny');
  });

  it('lets an explicit Deny win over any Allow, whatever the order', () => {
    expect(decide('sagemaker:InvokeEndpoint', endpointArn('churn-beta'))).toEqual({
      decision: 'explicitDeny',
      statement: { policy: 0, index: 1, sid: 'NotTheBeta' },
    });
    expect(decide('s3:PutObject', 'arn:aws:s3:::private/a.csv')).toMatchObject({
      decision: 'explicitDeny',
      statement: { sid: 'NothingOutsideExports' },
    });
    const reversed: PolicyDocument = {
      Statement: [
        { Effect: 'Deny', Action: '*', Resource: '*' },
        { Effect: 'Allow', Action: '*', Resource: '*' },
      ],
    };
    expect(evaluate([reversed], 'comprehend:DetectSentiment', '*').decision).toBe('explicitDeny');
  });
});

// ---------------------------------------------------------------- configuration

function configWith(iam: ConfigInput['iam'], extra: ConfigInput = {}) {
  return configSchema.parse({ region: REGION, accountId: ACCOUNT, iam, ...extra });
}

function loadError(iam: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgsage-iam-'));
  try {
    writeFileSync(path.join(dir, 'pgsage.config.json'), JSON.stringify({ iam }));
    loadConfig({ cwd: dir, env: {} });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  throw new Error('the configuration loaded');
}

const allowAll = (action: string): PolicyDocument => ({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: action, Resource: '*' }],
});

describe('configuration', () => {
  it('points at the bad statement of the bad role', () => {
    const message = loadError({
      roles: [
        { arn: COMPREHEND_ROLE, policy: allowAll('comprehend:*') },
        {
          arn: SAGEMAKER_ROLE,
          policy: {
            Version: '2012-10-17',
            Statement: [
              { Effect: 'Allow', Action: 'sagemaker:InvokeEndpoint', Resource: endpointArn('a') },
              { Effect: 'Allow', Action: 'sagemaker:InvokeEndpoint', Resource: endpointArn('b') },
              { Effect: 'Permit', Action: 'sagemaker:InvokeEndpoint', Resource: endpointArn('c') },
            ],
          },
        },
      ],
    });
    expect(message).toContain('iam.roles[1].policy.Statement[2].Effect: must be Allow or Deny');
  });

  it('checks the role ARNs the parameters and keys name', () => {
    const message = loadError({
      roles: [
        { arn: SAGEMAKER_ROLE, policy: allowAll('sagemaker:*') },
        { arn: SAGEMAKER_ROLE, policy: allowAll('*') },
      ],
      defaultRoles: { aws_default_sagemaker_role: S3_ROLE, aws_default_comprehend_role: 'AllowAuroraComprehendRole' },
      credentials: [
        { accessKeyId: 'AKPG1', secretAccessKey: 'short' },
        { accessKeyId: 'AKPG2', secretAccessKey: 'long-enough-secret-value', role: COMPREHEND_ROLE },
      ],
    });
    expect(message).toContain(`iam.roles[1].arn: ${SAGEMAKER_ROLE} is already defined by roles[0]`);
    expect(message).toContain(
      `iam.defaultRoles.aws_default_sagemaker_role: names ${S3_ROLE}, which is not a role of iam.roles`,
    );
    expect(message).toContain('iam.defaultRoles.aws_default_comprehend_role: must be a role ARN');
    expect(message).toContain('iam.credentials[0].secretAccessKey: must be at least 16 characters');
    expect(message).toContain(`iam.credentials[1].role: names ${COMPREHEND_ROLE}, which is not a role of iam.roles`);
    expect(loadError({ defaultRoles: { aws_default_s3_role: S3_ROLE } })).toContain(
      'iam.defaultRoles.aws_default_s3_role: names arn:aws:iam::123456789012:role/AllowAuroraS3Role, but iam.roles is not set',
    );
  });

  it('gives a laptop local roles that allow every ML action of its own region and account', () => {
    const resolved = resolveIam(configWith(undefined));
    expect(resolved.localDefaults).toBe(true);
    expect(resolved.attached).toEqual({
      aws_default_comprehend_role: `arn:aws:iam::${ACCOUNT}:role/pgsage-local-comprehend`,
      aws_default_sagemaker_role: `arn:aws:iam::${ACCOUNT}:role/pgsage-local-sagemaker`,
      aws_default_s3_role: `arn:aws:iam::${ACCOUNT}:role/pgsage-local-s3`,
    });
    expect(resolved.anonymous).toBe('loopback');
    const authorizer = new ServiceAuthorizer(resolved, { region: REGION, accountId: ACCOUNT });
    expect(() => authorizer.authorize('sagemaker', 'sagemaker:InvokeEndpoint', endpointArn('any'))).not.toThrow();
    expect(() =>
      authorizer.authorize('comprehend', 'comprehend:BatchDetectSentiment', authorizer.comprehendResource()),
    ).not.toThrow();
    expect(() => authorizer.authorizeS3('s3:PutObject', 'bucket', 'a/b.csv')).not.toThrow();
    // Even the local role does not reach another account's endpoints.
    expect(() =>
      authorizer.authorize(
        'sagemaker',
        'sagemaker:InvokeEndpoint',
        'arn:aws:sagemaker:us-east-1:999999999999:endpoint/x',
      ),
    ).toThrow(SqlError);
  });

  it('stops signing being optional once keys exist, unless anonymous access is set explicitly', () => {
    const keys = [{ accessKeyId: 'AKPGTEST', secretAccessKey: 'a-secret-of-some-length' }];
    expect(resolveIam(configWith({ credentials: keys })).anonymous).toBe('none');
    expect(resolveIam(configWith({ credentials: keys, anonymous: 'loopback' })).anonymous).toBe('loopback');
  });
});

// ---------------------------------------------------------------- the authorizer and the services wrapper

class RecordingServices implements MlServices {
  calls: string[] = [];
  async detectSentiment(texts: string[], languageCode: string) {
    this.calls.push(`sentiment ${languageCode} ${texts.join('|')}`);
    return texts.map(() => ({ sentiment: 'POSITIVE', confidence: 0.9 }));
  }
  async invokeEndpoint(endpointName: string, csvBody: string) {
    this.calls.push(`invoke ${endpointName} ${csvBody.trim()}`);
    return '0.5\n';
  }
}

function services(iam: ConfigInput['iam']) {
  const inner = new RecordingServices();
  const authorizer = new ServiceAuthorizer(resolveIam(configWith(iam)), { region: REGION, accountId: ACCOUNT });
  return { inner, wrapped: new AuthorizedMlServices(inner, authorizer), authorizer };
}

const lockedDown: ConfigInput['iam'] = {
  roles: [
    {
      arn: SAGEMAKER_ROLE,
      policy: {
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Churn', Effect: 'Allow', Action: 'sagemaker:InvokeEndpoint', Resource: endpointArn('churn-*') },
          { Sid: 'NotBeta', Effect: 'Deny', Action: 'sagemaker:InvokeEndpoint', Resource: endpointArn('churn-beta') },
        ],
      },
    },
    {
      arn: COMPREHEND_ROLE,
      policy: {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'AllowAuroraToInvokeComprehendDetectSentiment',
            Effect: 'Allow',
            Action: ['comprehend:DetectSentiment', 'comprehend:BatchDetectSentiment'],
            Resource: '*',
          },
        ],
      },
    },
    {
      arn: S3_ROLE,
      policy: {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: 'arn:aws:s3:::exports/*' },
        ],
      },
    },
  ],
  defaultRoles: {
    aws_default_sagemaker_role: SAGEMAKER_ROLE,
    aws_default_comprehend_role: COMPREHEND_ROLE,
    aws_default_s3_role: S3_ROLE,
  },
};

async function refusal(promise: Promise<unknown>): Promise<SqlError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SqlError);
    return error as SqlError;
  }
  throw new Error('the call was allowed');
}

describe('AuthorizedMlServices', () => {
  it('passes allowed calls through unchanged', async () => {
    const { inner, wrapped } = services(lockedDown);
    expect(await wrapped.invokeEndpoint('churn-xgb', '1,2\n')).toBe('0.5\n');
    expect(await wrapped.detectSentiment(['good', 'bad'], 'en')).toHaveLength(2);
    expect(inner.calls).toEqual(['invoke churn-xgb 1,2', 'sentiment en good|bad']);
  });

  it('refuses with 42501 naming the action and the resource, and makes no call', async () => {
    const { inner, wrapped } = services(lockedDown);
    const denied = await refusal(wrapped.invokeEndpoint('fraud-xgb', '1\n'));
    expect(denied.sqlstate).toBe('42501');
    expect(denied.message).toBe(
      `${SAGEMAKER_ROLE} is not authorized to perform: sagemaker:InvokeEndpoint on resource: ${endpointArn('fraud-xgb')} because no identity-based policy allows the sagemaker:InvokeEndpoint action`,
    );
    expect(denied.detail).toContain('aws_default_sagemaker_role');
    expect(denied.hint).toContain('pgsage iam simulate sagemaker sagemaker:InvokeEndpoint');
    const explicit = await refusal(wrapped.invokeEndpoint('churn-beta', '1\n'));
    expect(explicit.message).toMatch(/with an explicit deny in an identity-based policy$/);
    expect(explicit.detail).toMatch(/Statement\[1\] \(Sid "NotBeta"\)/);
    expect(inner.calls).toEqual([]);
  });

  it('checks endpoint ARNs in lowercase, as SageMaker writes them', async () => {
    const { inner, wrapped } = services(lockedDown);
    await wrapped.invokeEndpoint('Churn-XGB', '1\n');
    expect(inner.calls).toEqual(['invoke Churn-XGB 1']);
  });

  it('makes a service without an attached role unavailable, telling the admin what to set', async () => {
    const { inner, wrapped } = services({
      roles: lockedDown.roles,
      defaultRoles: { aws_default_sagemaker_role: SAGEMAKER_ROLE },
    });
    const missing = await refusal(wrapped.detectSentiment(['x'], 'en'));
    expect(missing.sqlstate).toBe('42501');
    expect(missing.message).toBe(
      'aws_comprehend.detect_sentiment is unavailable: no IAM role is attached for Amazon Comprehend (aws_default_comprehend_role)',
    );
    expect(missing.hint).toMatch(/^An administrator must set iam\.defaultRoles\.aws_default_comprehend_role /);
    expect(missing.hint).toContain('pgsage iam attach comprehend');
    expect(inner.calls).toEqual([]);
  });

  it('refuses endpoints of another region or account, and accepts its own by ARN', async () => {
    const { inner, wrapped } = services(undefined);
    const crossRegion = await refusal(
      wrapped.invokeEndpoint('arn:aws:sagemaker:eu-west-1:123456789012:endpoint/churn-xgb', '1\n'),
    );
    expect(crossRegion.sqlstate).toBe('22023');
    expect(crossRegion.message).toBe(
      'SageMaker endpoint arn:aws:sagemaker:eu-west-1:123456789012:endpoint/churn-xgb is in region eu-west-1; this cluster can only invoke endpoints in its own region us-east-1',
    );
    expect(crossRegion.hint).toMatch(/Deploy the model to an endpoint in us-east-1/);
    const otherAccount = await refusal(
      wrapped.invokeEndpoint('arn:aws:sagemaker:us-east-1:999999999999:endpoint/churn-xgb', '1\n'),
    );
    expect(otherAccount.message).toMatch(/belongs to account 999999999999/);
    await refusal(wrapped.invokeEndpoint('arn:aws:sagemaker:us-east-1:123456789012:model/churn-xgb', '1\n'));
    await wrapped.invokeEndpoint(endpointArn('churn-xgb'), '1\n');
    expect(inner.calls).toEqual(['invoke churn-xgb 1']);
  });

  it('refuses even when the policy allows the other region: endpoints are region-local', async () => {
    const { wrapped } = services({
      roles: [{ arn: SAGEMAKER_ROLE, policy: allowAll('sagemaker:InvokeEndpoint') }],
      defaultRoles: { aws_default_sagemaker_role: SAGEMAKER_ROLE },
    });
    const refused = await refusal(
      wrapped.invokeEndpoint('arn:aws:sagemaker:ap-south-1:123456789012:endpoint/churn-xgb', '1\n'),
    );
    expect(refused.message).toMatch(/can only invoke endpoints in its own region us-east-1/);
  });

  it('authorizes S3 exports on arn:aws:s3:::bucket/key', () => {
    const { authorizer } = services(lockedDown);
    expect(() => authorizer.authorizeS3('s3:PutObject', 'exports', 'daily/2024.csv')).not.toThrow();
    expect(() => authorizer.authorizeS3('s3:PutObject', 'exports', 'daily/2024.csv', REGION)).not.toThrow();
    expect(() => authorizer.authorizeS3('s3:PutObject', 'private', 'x.csv')).toThrow(
      expect.objectContaining({
        sqlstate: '42501',
        message: expect.stringContaining('s3:PutObject on resource: arn:aws:s3:::private/x.csv'),
      }),
    );
    expect(() => authorizer.authorizeS3('s3:ListBucket', 'exports')).toThrow(/arn:aws:s3:::exports because/);
    expect(() => authorizer.authorizeS3('s3:PutObject', 'exports', 'x.csv', 'eu-west-1')).toThrow(
      expect.objectContaining({ sqlstate: '22023', message: expect.stringMatching(/region eu-west-1/) }),
    );
  });
});

// ---------------------------------------------------------------- pgsage iam

describe('pgsage iam', () => {
  let dir: string;
  let file: string;
  let printed: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'pgsage-iam-cli-'));
    file = path.join(dir, 'pgsage.config.json');
    writeFileSync(file, JSON.stringify({ accountId: ACCOUNT, region: REGION, port: 7000 }, null, 2));
    printed = '';
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  async function iam(...args: string[]): Promise<string> {
    const program = new Command().exitOverride();
    registerIamCommands(program, { out: (text) => (printed += text) });
    printed = '';
    await program.parseAsync(['node', 'pgsage', 'iam', ...args, '--config', file]);
    return printed;
  }

  const stored = () => JSON.parse(readFileSync(file, 'utf8'));

  it('lists the local defaults of a fresh configuration', async () => {
    const out = await iam('list');
    // The file is not ./pgsage.config.json: the command the listing suggests names it.
    expect(out).toContain(
      `Roles: pgsage's local defaults (no iam.roles in the configuration; pgsage iam init --config ${file} writes them out)`,
    );
    expect(out).toMatch(/aws_default_sagemaker_role\s+arn:aws:iam::123456789012:role\/pgsage-local-sagemaker/);
    expect(out).toContain('Unsigned requests: loopback');
    await expect(iam('get-role-policy', 'ghost')).rejects.toThrow(
      `no role ghost in ${file} (pgsage iam list --config ${file} shows the roles)`,
    );
  });

  it('locks a service down to one role, keeping the rest of the file', async () => {
    const policyFile = path.join(dir, 'churn.json');
    writeFileSync(
      policyFile,
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Churn', Effect: 'Allow', Action: 'sagemaker:InvokeEndpoint', Resource: endpointArn('churn-*') },
        ],
      }),
    );
    const created = await iam(
      'create-role',
      'ChurnOnly',
      '--policy-document',
      `file://${policyFile}`,
      '--attach',
      'sagemaker',
    );
    expect(created).toContain("Wrote pgsage's local default roles");
    expect(created).toContain(
      `Created arn:aws:iam::${ACCOUNT}:role/ChurnOnly and set aws_default_sagemaker_role to it`,
    );
    await iam('delete-role', 'pgsage-local-sagemaker');
    const config = stored();
    expect(config.port).toBe(7000);
    expect(config.iam.defaultRoles.aws_default_sagemaker_role).toBe(`arn:aws:iam::${ACCOUNT}:role/ChurnOnly`);
    expect(config.iam.roles.map((r: { arn: string }) => r.arn)).toEqual([
      `arn:aws:iam::${ACCOUNT}:role/pgsage-local-comprehend`,
      `arn:aws:iam::${ACCOUNT}:role/pgsage-local-s3`,
      `arn:aws:iam::${ACCOUNT}:role/ChurnOnly`,
    ]);
    expect(await iam('simulate', 'sagemaker', 'sagemaker:InvokeEndpoint', endpointArn('churn-a'))).toMatch(
      /^allowed: .* Statement\[0\] \(Sid Churn\)/,
    );
    expect(await iam('simulate', 'sagemaker', 'sagemaker:InvokeEndpoint', endpointArn('fraud'))).toMatch(
      /^implicitDeny: /,
    );
    process.exitCode = undefined;
    const loaded = loadConfig({ file, env: {} });
    expect(resolveIam(loaded).attached.aws_default_sagemaker_role).toBe(`arn:aws:iam::${ACCOUNT}:role/ChurnOnly`);
  });

  it('refuses invalid policies and dangling references without touching the file', async () => {
    const before = readFileSync(file, 'utf8');
    await expect(
      iam(
        'create-role',
        'Bad',
        '--policy-document',
        '{"Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}',
      ),
    ).rejects.toThrow(/Statement\[0\]\.Effect: must be Allow or Deny/);
    await iam('init');
    await expect(iam('delete-role', 'pgsage-local-comprehend')).rejects.toThrow(
      /is attached as aws_default_comprehend_role/,
    );
    await iam('detach', 'comprehend');
    expect(stored().iam.defaultRoles.aws_default_comprehend_role).toBeUndefined();
    await iam('delete-role', 'pgsage-local-comprehend');
    expect(before).not.toBe(readFileSync(file, 'utf8'));
  });

  it('creates edge access keys in a file only its owner can read', async () => {
    const out = await iam('create-access-key', '--principal', `arn:aws:iam::${ACCOUNT}:user/analyst`);
    const id = /AWS_ACCESS_KEY_ID=(\w+)/.exec(out)![1];
    const secret = /AWS_SECRET_ACCESS_KEY=(\S+)/.exec(out)![1];
    expect(secret.length).toBeGreaterThanOrEqual(40);
    expect(stored().iam.credentials).toEqual([
      { accessKeyId: id, secretAccessKey: secret, principal: `arn:aws:iam::${ACCOUNT}:user/analyst` },
    ]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await iam('list')).not.toContain(secret);
    expect(resolveIam(loadConfig({ file, env: {} })).anonymous).toBe('none');
    await iam('delete-access-key', id);
    expect(stored().iam.credentials).toEqual([]);
  });
});

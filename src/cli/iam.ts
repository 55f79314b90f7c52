/**
 * `pgsage iam …`: service roles, their policies, the cluster parameters that
 * attach them (aws_default_comprehend_role, aws_default_sagemaker_role,
 * aws_default_s3_role) and the edge's access keys, kept in the pgsage
 * configuration file. Like Aurora's cluster parameters (ApplyMethod
 * pending-reboot), changes take effect when pgsage restarts.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { type Config, ConfigError, configSchema, loadConfig } from '../config/index.js';
import { describePath, type MlService, ROLE_PARAMETERS, type RoleParameter } from '../iam/config.js';
import { evaluate, formatPath, type PolicyDocument, validatePolicy } from '../iam/policy.js';
import { localAttachments, localRoles, resolveIam, usesLocalDefaults } from '../iam/roles.js';
import { repeatedOptions } from '../util/shell.js';
import { warnOnStderr } from './options.js';

/** Where the commands write; tests capture it. */
export interface IamCliOutput {
  out(text: string): void;
}

const stdio: IamCliOutput = { out: (text) => process.stdout.write(text) };

type Tree = Record<string, unknown>;

interface RawIam {
  roles?: { arn: string; description?: string; policy: unknown }[];
  defaultRoles?: Partial<Record<RoleParameter, string>>;
  credentials?: { accessKeyId: string; secretAccessKey: string; principal?: string; role?: string }[];
  anonymous?: string;
}

interface ConfigFile {
  file: string;
  raw: Tree;
  config: Config;
  /** ` --config <file>` when it was given: commands printed to run next need it too. */
  again: string;
}

function configPath(flags: { config?: string }): string {
  return path.resolve(flags.config ?? process.env.PGSAGE_CONFIG ?? 'pgsage.config.json');
}

function openConfig(flags: { config?: string }): ConfigFile {
  const file = configPath(flags);
  let raw: Tree = {};
  if (existsSync(file)) {
    try {
      raw = JSON.parse(readFileSync(file, 'utf8')) as Tree;
    } catch (error) {
      throw new ConfigError(`configuration file ${file} is not valid JSON: ${(error as Error).message}`);
    }
  }
  const config = loadConfig({
    file: existsSync(file) ? file : undefined,
    cwd: path.dirname(file),
    onWarning: warnOnStderr,
  });
  return { file, raw, config, again: repeatedOptions([['--config', flags.config]]) };
}

function iamOf(raw: Tree): RawIam {
  if (typeof raw.iam !== 'object' || raw.iam === null) raw.iam = {};
  return raw.iam as RawIam;
}

/** Before the first explicit role, the local defaults are written out so that the quick start keeps working. */
function materialize(cfg: ConfigFile, output: IamCliOutput): RawIam {
  const iam = iamOf(cfg.raw);
  if (usesLocalDefaults(iam as Config['iam'])) {
    const scope = { region: cfg.config.region, accountId: cfg.config.accountId };
    iam.roles = localRoles(scope);
    iam.defaultRoles = localAttachments(scope);
    output.out(`Wrote pgsage's local default roles into ${cfg.file} (they were implicit until now).\n`);
  }
  iam.roles ??= [];
  iam.defaultRoles ??= {};
  return iam;
}

function save(cfg: ConfigFile): void {
  const parsed = configSchema.safeParse(cfg.raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `  - ${describePath(i.path)}: ${i.message}`).join('\n');
    throw new ConfigError(`the change would make the configuration invalid; nothing was written:\n${issues}`);
  }
  const secret = ((cfg.raw.iam as RawIam | undefined)?.credentials ?? []).length > 0;
  const temporary = `${cfg.file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(cfg.raw, null, 2)}\n`, { mode: secret ? 0o600 : 0o644 });
  if (secret) chmodSync(temporary, 0o600);
  renameSync(temporary, cfg.file);
}

function roleArnFor(cfg: ConfigFile, nameOrArn: string): string {
  return nameOrArn.startsWith('arn:') ? nameOrArn : `arn:aws:iam::${cfg.config.accountId}:role/${nameOrArn}`;
}

function findRole(cfg: ConfigFile, roles: { arn: string }[], nameOrArn: string): number {
  const arn = roleArnFor(cfg, nameOrArn);
  const index = roles.findIndex((r) => r.arn === arn || r.arn.endsWith(`/${nameOrArn}`));
  if (index < 0)
    throw new ConfigError(`no role ${nameOrArn} in ${cfg.file} (pgsage iam list${cfg.again} shows the roles)`);
  return index;
}

function serviceOf(text: string): MlService {
  const lower = text.toLowerCase();
  for (const [service, parameter] of Object.entries(ROLE_PARAMETERS)) {
    if (lower === service || lower === parameter) return service as MlService;
  }
  throw new ConfigError(`unknown service ${text}: use comprehend, sagemaker or s3 (or the parameter name)`);
}

/** A policy document from inline JSON or file://path, as the AWS CLI takes --policy-document. */
function readPolicy(text: string): PolicyDocument {
  let json = text;
  if (text.startsWith('file://')) {
    const file = text.slice('file://'.length);
    try {
      json = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read policy document ${file}: ${(error as Error).message}`);
    }
  }
  let document: unknown;
  try {
    document = JSON.parse(json);
  } catch (error) {
    throw new ConfigError(`the policy document is not valid JSON: ${(error as Error).message}`);
  }
  const issues = validatePolicy(document);
  if (issues.length) {
    throw new ConfigError(
      `invalid policy document:\n${issues.map((i) => `  - ${i.path.length ? formatPath(i.path) : '(document)'}: ${i.message}`).join('\n')}`,
    );
  }
  return document as PolicyDocument;
}

function withFile(command: Command): Command {
  return command.option('-c, --config <file>', 'configuration file to read and change (default ./pgsage.config.json)');
}

const RESTART = 'Restart pgsage for the change to take effect.\n';

export function registerIamCommands(program: Command, output: IamCliOutput = stdio): Command {
  const iam = program
    .command('iam')
    .description('service roles and policies (aws_default_*_role), edge access keys; kept in the configuration file');

  withFile(iam.command('list').description('roles, the parameters that attach them, access keys'))
    .option('--json', 'machine-readable output')
    .action((flags: { config?: string; json?: boolean }) => {
      const cfg = openConfig(flags);
      const resolved = resolveIam(cfg.config);
      if (flags.json) {
        output.out(
          `${JSON.stringify(
            {
              localDefaults: resolved.localDefaults,
              region: cfg.config.region,
              defaultRoles: resolved.attached,
              roles: [...resolved.roles.values()],
              credentials: resolved.credentials.map(({ secretAccessKey: _, ...rest }) => rest),
              anonymous: resolved.anonymous,
            },
            null,
            2,
          )}\n`,
        );
        return;
      }
      const lines = [`Region: ${cfg.config.region}   Account: ${cfg.config.accountId}`];
      if (resolved.localDefaults) {
        lines.push(
          `Roles: pgsage's local defaults (no iam.roles in the configuration; pgsage iam init${cfg.again} writes them out)`,
        );
      }
      lines.push('', 'Cluster parameters:');
      for (const [parameter, arn] of Object.entries(resolved.attached)) {
        lines.push(`  ${parameter.padEnd(28)} ${arn ?? '(not set: the service is unavailable from SQL)'}`);
      }
      lines.push('', 'Roles:');
      if (resolved.roles.size === 0) lines.push('  (none)');
      for (const role of resolved.roles.values()) {
        const statements = Array.isArray(role.policy.Statement) ? role.policy.Statement.length : 1;
        lines.push(`  ${role.arn}  (${statements} statement${statements === 1 ? '' : 's'})`);
        if (role.description) lines.push(`    ${role.description}`);
      }
      lines.push('', 'Edge access keys (AWS Signature Version 4):');
      if (resolved.credentials.length === 0) lines.push('  (none: signatures are not checked)');
      for (const c of resolved.credentials) {
        lines.push(`  ${c.accessKeyId}  ${c.principal ?? ''}${c.role ? `  role ${c.role}` : '  unrestricted'}`);
      }
      lines.push(`Unsigned requests: ${resolved.anonymous}`);
      output.out(`${lines.join('\n')}\n`);
    });

  withFile(iam.command('init').description("write pgsage's local default roles into the configuration, to edit them"))
    .option('--empty', 'no roles and no attachments instead: every ML service is unavailable until you add some')
    .action((flags: { config?: string; empty?: boolean }) => {
      const cfg = openConfig(flags);
      const raw = iamOf(cfg.raw);
      if (!usesLocalDefaults(raw as Config['iam'])) {
        throw new ConfigError(`${cfg.file} already defines iam.roles or iam.defaultRoles`);
      }
      if (flags.empty) {
        raw.roles = [];
        raw.defaultRoles = {};
      } else {
        materialize(cfg, { out: () => {} });
      }
      save(cfg);
      output.out(
        `${flags.empty ? 'Wrote empty iam.roles and iam.defaultRoles' : 'Wrote the local default roles'} to ${cfg.file}. ${RESTART}`,
      );
    });

  withFile(
    iam.command('create-role').description('add a role with a policy document').argument('<role>', 'name or ARN'),
  )
    .requiredOption('--policy-document <json>', 'the policy: JSON text or file://path')
    .option('--description <text>')
    .option('--attach <service>', 'also attach it as the role of comprehend, sagemaker or s3')
    .action(
      (role: string, flags: { config?: string; policyDocument: string; description?: string; attach?: string }) => {
        const cfg = openConfig(flags);
        const policy = readPolicy(flags.policyDocument);
        const service = flags.attach ? serviceOf(flags.attach) : undefined;
        const raw = materialize(cfg, output);
        const arn = roleArnFor(cfg, role);
        if (raw.roles!.some((r) => r.arn === arn)) throw new ConfigError(`role ${arn} already exists`);
        raw.roles!.push({ arn, ...(flags.description ? { description: flags.description } : {}), policy });
        if (service) raw.defaultRoles![ROLE_PARAMETERS[service]] = arn;
        save(cfg);
        output.out(`Created ${arn}${service ? ` and set ${ROLE_PARAMETERS[service]} to it` : ''}. ${RESTART}`);
      },
    );

  withFile(iam.command('put-role-policy').description("replace a role's policy document").argument('<role>'))
    .requiredOption('--policy-document <json>', 'the policy: JSON text or file://path')
    .action((role: string, flags: { config?: string; policyDocument: string }) => {
      const cfg = openConfig(flags);
      const policy = readPolicy(flags.policyDocument);
      const raw = materialize(cfg, output);
      const index = findRole(cfg, raw.roles!, role);
      raw.roles![index].policy = policy;
      save(cfg);
      output.out(`Replaced the policy of ${raw.roles![index].arn}. ${RESTART}`);
    });

  withFile(iam.command('get-role-policy').description("print a role's policy document").argument('<role>')).action(
    (role: string, flags: { config?: string }) => {
      const cfg = openConfig(flags);
      const roles = [...resolveIam(cfg.config).roles.values()];
      const found = roles[findRole(cfg, roles, role)];
      output.out(`${JSON.stringify(found.policy, null, 2)}\n`);
    },
  );

  withFile(
    iam
      .command('delete-role')
      .description('remove a role (it must not be attached or used by a key)')
      .argument('<role>'),
  ).action((role: string, flags: { config?: string }) => {
    const cfg = openConfig(flags);
    const raw = materialize(cfg, output);
    const index = findRole(cfg, raw.roles!, role);
    const arn = raw.roles![index].arn;
    const attached = Object.entries(raw.defaultRoles ?? {}).filter(([, value]) => value === arn);
    if (attached.length) {
      throw new ConfigError(
        `${arn} is attached as ${attached.map(([k]) => k).join(', ')}; attach another role or detach it first (pgsage iam detach <service>${cfg.again})`,
      );
    }
    if ((raw.credentials ?? []).some((c) => c.role === arn)) {
      throw new ConfigError(`${arn} limits an access key; delete or change that key first`);
    }
    raw.roles!.splice(index, 1);
    save(cfg);
    output.out(`Deleted ${arn}. ${RESTART}`);
  });

  withFile(
    iam
      .command('attach')
      .description('set aws_default_<service>_role: the role calls to that service from the database use')
      .argument('<service>', 'comprehend, sagemaker or s3')
      .argument('<role>', 'name or ARN'),
  ).action((serviceText: string, role: string, flags: { config?: string }) => {
    const cfg = openConfig(flags);
    const service = serviceOf(serviceText);
    const raw = materialize(cfg, output);
    const arn = raw.roles![findRole(cfg, raw.roles!, role)].arn;
    raw.defaultRoles![ROLE_PARAMETERS[service]] = arn;
    save(cfg);
    output.out(`Set ${ROLE_PARAMETERS[service]} to ${arn}. ${RESTART}`);
  });

  withFile(
    iam
      .command('detach')
      .description('unset aws_default_<service>_role: the service becomes unavailable from SQL')
      .argument('<service>'),
  ).action((serviceText: string, flags: { config?: string }) => {
    const cfg = openConfig(flags);
    const service = serviceOf(serviceText);
    const raw = materialize(cfg, output);
    delete raw.defaultRoles![ROLE_PARAMETERS[service]];
    save(cfg);
    output.out(`Unset ${ROLE_PARAMETERS[service]}: ${service} calls from SQL are refused. ${RESTART}`);
  });

  withFile(
    iam
      .command('simulate')
      .description('evaluate an action on a resource as pgsage would (explicit deny wins, default deny)')
      .argument('<service-or-role>', 'comprehend|sagemaker|s3 (the attached role), or a role name or ARN')
      .argument('<action>', 'e.g. sagemaker:InvokeEndpoint')
      .argument('<resource>', 'e.g. arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn-xgb'),
  ).action((who: string, action: string, resource: string, flags: { config?: string }) => {
    const cfg = openConfig(flags);
    const resolved = resolveIam(cfg.config);
    let roleArn: string | undefined;
    try {
      roleArn = resolved.attached[ROLE_PARAMETERS[serviceOf(who)]];
      if (!roleArn) {
        output.out(`implicitDeny: no role is attached for ${who}\n`);
        process.exitCode = 1;
        return;
      }
    } catch {
      const roles = [...resolved.roles.values()];
      roleArn = roles[findRole(cfg, roles, who)].arn;
    }
    const role = resolved.roles.get(roleArn)!;
    const decision = evaluate([role.policy], action, resource);
    const statement =
      decision.decision === 'implicitDeny'
        ? 'no statement matches'
        : `Statement[${decision.statement.index}]${decision.statement.sid ? ` (Sid ${decision.statement.sid})` : ''}`;
    output.out(`${decision.decision}: ${action} on ${resource} by ${roleArn}: ${statement}\n`);
    if (decision.decision !== 'allowed') process.exitCode = 1;
  });

  withFile(iam.command('create-access-key').description('a key the edge accepts (prints the secret once)'))
    .option('--principal <arn>', 'who the key belongs to (default arn:aws:iam::<account>:user/<key id>)')
    .option('--role <role>', "limit the key to a role's policy (default: unrestricted)")
    .action((flags: { config?: string; principal?: string; role?: string }) => {
      const cfg = openConfig(flags);
      const raw = iamOf(cfg.raw);
      let role: string | undefined;
      if (flags.role) {
        const roles = [...resolveIam(cfg.config).roles.values()];
        role = roles[findRole(cfg, roles, flags.role)].arn;
        materialize(cfg, output);
      }
      const accessKeyId = `AKPG${randomBytes(8).toString('hex').toUpperCase()}`;
      const secretAccessKey = randomBytes(30)
        .toString('base64')
        .replace(/[+/]/g, (c) => (c === '+' ? 'A' : 'B'));
      raw.credentials ??= [];
      raw.credentials.push({
        accessKeyId,
        secretAccessKey,
        ...(flags.principal ? { principal: flags.principal } : {}),
        ...(role ? { role } : {}),
      });
      save(cfg);
      output.out(
        [
          `AWS_ACCESS_KEY_ID=${accessKeyId}`,
          `AWS_SECRET_ACCESS_KEY=${secretAccessKey}`,
          '',
          `Stored in ${cfg.file} (mode 0600). The edge now checks signatures; unsigned requests are refused unless iam.anonymous allows them.`,
          RESTART,
        ].join('\n'),
      );
    });

  withFile(
    iam.command('delete-access-key').description('remove an edge access key').argument('<access-key-id>'),
  ).action((id: string, flags: { config?: string }) => {
    const cfg = openConfig(flags);
    const raw = iamOf(cfg.raw);
    const before = raw.credentials?.length ?? 0;
    raw.credentials = (raw.credentials ?? []).filter((c) => c.accessKeyId !== id);
    if (raw.credentials.length === before) throw new ConfigError(`no access key ${id} in ${cfg.file}`);
    save(cfg);
    output.out(`Deleted access key ${id}. ${RESTART}`);
  });

  withFile(
    iam
      .command('set-anonymous')
      .description('who may use the edge without signing: none, loopback (127.0.0.0/8 and ::1) or any')
      .argument('<mode>'),
  ).action((mode: string, flags: { config?: string }) => {
    const cfg = openConfig(flags);
    iamOf(cfg.raw).anonymous = mode;
    save(cfg);
    output.out(`Unsigned requests: ${mode}. ${RESTART}`);
  });

  return iam;
}

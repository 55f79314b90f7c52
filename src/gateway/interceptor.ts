import { storeBridgeConninfo } from '../extension/install.js';
import { rewriteStatementText } from '../sql/rewrite.js';
import type { Message } from './protocol.js';
import { parseMessage, queryMessage, readParse, readyForQuery } from './protocol.js';
import type { SessionControl, SessionInterceptor } from './session.js';

/** Names whose mention makes a statement worth parsing. Anything else is relayed untouched. */
const BUILTIN_NAMES = ['invoke_endpoint', 'detect_sentiment', 'apg_enable_function_migration', 'aws_ml'];

export function mlNamePattern(extraNames: Iterable<string> = []): RegExp {
  const names = [...BUILTIN_NAMES, ...extraNames].map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(names.join('|'), 'i');
}

const CREATE_AWS_ML = /^\s*create\s+extension\s+(if\s+not\s+exists\s+)?"?aws_ml"?[\s;]/i;

export interface InterceptorContext {
  pattern: RegExp;
  /**
   * Upstream mode: PostgreSQL cannot read a file pgsage writes, so the bridge
   * location is stored in aws_ml.bridge_settings when the extension is created.
   */
  bridgeConninfoForUpstream?: () => string;
}

/**
 * The gateway's handling of statements that mention ML functions: the
 * `invoke_endpoint` call-site rewrite PostgreSQL needs ("any" arguments) and
 * Aurora's setting names. Batch mode builds on this hook.
 */
export class MlInterceptor implements SessionInterceptor {
  constructor(private readonly context: InterceptorContext) {}

  mentionsMl(sql: string): boolean {
    return this.context.pattern.test(sql);
  }

  tracks(_message: Message): boolean {
    return false;
  }

  async handleQuery(control: SessionControl, sql: string, message: Message): Promise<void> {
    if (this.context.bridgeConninfoForUpstream && CREATE_AWS_ML.test(`${sql} `)) {
      await this.createExtensionUpstream(control, sql);
      return;
    }
    const rewritten = rewriteStatementText(sql);
    control.forward(rewritten === sql ? message.bytes : queryMessage(rewritten), 1);
  }

  async handleExtended(control: SessionControl, group: Message[]): Promise<void> {
    let syncs = 0;
    const out = group.map((message) => {
      if (message.type === 0x53) syncs += 1;
      if (message.type !== 0x50) return message.bytes;
      const parse = readParse(message.bytes);
      const rewritten = rewriteStatementText(parse.sql);
      return rewritten === parse.sql ? message.bytes : parseMessage(parse.name, rewritten, parse.paramTypes);
    });
    control.forward(out, syncs);
  }

  /** Runs CREATE EXTENSION aws_ml, then tells the new extension where the bridge listens. */
  private async createExtensionUpstream(control: SessionControl, sql: string): Promise<void> {
    const outcome = await control.relay(queryMessage(sql));
    let status = outcome.status;
    if (!outcome.failed && status !== 'E') {
      await storeBridgeConninfo(control.backend, this.context.bridgeConninfoForUpstream!());
      status = control.backend.status;
    }
    control.toClient(readyForQuery(status));
  }
}

import { rewriteStatementText } from '../sql/rewrite.js';
import type { Message } from './protocol.js';
import { parseMessage, queryMessage, readParse } from './protocol.js';
import type { SessionControl, SessionInterceptor } from './session.js';

/** Names whose mention makes a statement worth parsing. Anything else is relayed untouched. */
const BUILTIN_NAMES = ['invoke_endpoint', 'detect_sentiment', 'apg_enable_function_migration'];

export function mlNamePattern(extraNames: Iterable<string> = []): RegExp {
  const names = [...BUILTIN_NAMES, ...extraNames].map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(names.join('|'), 'i');
}

/**
 * The gateway's handling of statements that mention ML functions: the
 * `invoke_endpoint` call-site rewrite PostgreSQL needs ("any" arguments) and
 * Aurora's setting names. Batch mode builds on this hook.
 */
export class MlInterceptor implements SessionInterceptor {
  constructor(private readonly pattern: RegExp = mlNamePattern()) {}

  mentionsMl(sql: string): boolean {
    return this.pattern.test(sql);
  }

  tracks(_message: Message): boolean {
    return false;
  }

  async handleQuery(control: SessionControl, sql: string, message: Message): Promise<void> {
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
}

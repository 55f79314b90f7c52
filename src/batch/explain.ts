import type { BatchPlan, CallGroup } from './planner.js';
import type { BatchFigures } from './scoring.js';

const RESULTS_SCAN = /\bon (?:\S+\.)?aws_ml_(?:row_)?results (aws_ml_r\d+)\b/;
const EXECUTION_TIME = /^Execution Time: (\d+(?:\.\d+)?) ms$/;

function detailIndent(line: string): string {
  const arrow = line.indexOf('->');
  if (arrow >= 0) return ' '.repeat(arrow + 6);
  return ' '.repeat(line.length - line.trimStart().length + 2);
}

/**
 * Adds batch mode to a text-format EXPLAIN: under the scan of each call's
 * stored results, the function it stands for and (with ANALYZE) Aurora's
 * `Batch Processing:` figures; calls read per row are listed at the end.
 * `batchMs`, the gateway's work before the statement (argument queries,
 * service calls, loading the answers), is added to its Execution Time.
 */
export function annotateExplain(
  lines: string[],
  plan: Pick<BatchPlan, 'groups' | 'perRow'>,
  figures: Map<CallGroup, BatchFigures> | undefined,
  batchMs?: number,
): string[] {
  const byAlias = new Map<string, CallGroup>();
  for (const group of plan.groups) for (const alias of group.aliases) byAlias.set(alias, group);
  const shown = new Set<CallGroup>();
  const out: string[] = [];
  for (const line of lines) {
    out.push(line);
    const match = RESULTS_SCAN.exec(line);
    const group = match ? byAlias.get(match[1]) : undefined;
    if (!group || shown.has(group)) continue;
    shown.add(group);
    const indent = detailIndent(line);
    out.push(`${indent}ML Function: ${group.callSql}`);
    const groupFigures = figures?.get(group);
    if (groupFigures) out.push(`${indent}${groupFigures.describe()}`);
  }
  // Aurora's Execution Time includes the calls, made while the statement runs: here, the work before it.
  if (batchMs !== undefined) {
    const at = out.findIndex((l) => EXECUTION_TIME.test(l));
    if (at >= 0) {
      const ms = Number(EXECUTION_TIME.exec(out[at])![1]) + batchMs;
      out[at] = `Execution Time: ${ms.toFixed(3)} ms`;
    }
  }
  const trailer: string[] = [];
  for (const group of plan.groups) {
    if (shown.has(group)) continue;
    trailer.push(`ML Function (batch results read per row): ${group.callSql}`);
    const groupFigures = figures?.get(group);
    if (groupFigures) trailer.push(`  ${groupFigures.describe()}`);
  }
  for (const call of plan.perRow) trailer.push(`ML Function (per row): ${call.label} (${call.reason})`);
  if (trailer.length === 0) return out;
  const timing = out.findIndex((l) => /^(Planning|Execution) Time:/.test(l));
  if (timing < 0) return [...out, ...trailer];
  return [...out.slice(0, timing), ...trailer, ...out.slice(timing)];
}

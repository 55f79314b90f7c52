import type { BatchStatistics } from '../batch/statistics.js';
import type { BridgeHandler } from '../gateway/bridge.js';
import { SqlError, SqlState } from '../util/errors.js';
import type { MlServices } from './client.js';
import { modelInputToCsv } from './model-input.js';

function requireString(request: Record<string, unknown>, field: string): string {
  const value = request[field];
  if (typeof value !== 'string') {
    throw new SqlError(SqlState.invalidParameterValue, `bridge request is missing "${field}"`);
  }
  return value;
}

/** Strips the line ending SageMaker containers put after a single-row answer. */
export function singleRowOutput(body: string): string {
  return body.replace(/\r?\n$/, '');
}

/**
 * Serves the in-database functions' per-row calls (one row per request) by
 * forwarding them to the ML services.
 */
export function perRowHandler(services: MlServices, statistics?: BatchStatistics): BridgeHandler {
  return async (request, signal) => {
    switch (request.op) {
      case 'ping':
        // Measures the bridge itself (bench/gateway.ts).
        return { pong: true };
      case 'statistics':
        return {
          functions: (statistics?.snapshot() ?? []).map(({ function: name, figures }) => ({
            function: name,
            ...figures,
          })),
        };
      case 'comprehend.detect_sentiment': {
        statistics?.recordPerRowCall('aws_comprehend.detect_sentiment');
        const [item] = await services.detectSentiment(
          [requireString(request, 'text')],
          requireString(request, 'language'),
          signal,
        );
        if (item instanceof SqlError) throw item;
        return item;
      }
      case 'sagemaker.invoke_endpoint': {
        statistics?.recordPerRowCall('aws_sagemaker.invoke_endpoint');
        const csv = modelInputToCsv(requireString(request, 'input'));
        const body = await services.invokeEndpoint(requireString(request, 'endpoint'), `${csv}\n`, signal);
        return { output: singleRowOutput(body) };
      }
      default:
        throw new SqlError(SqlState.featureNotSupported, `unknown bridge operation ${String(request.op)}`);
    }
  };
}

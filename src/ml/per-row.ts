import type { BatchStatistics } from '../batch/statistics.js';
import type { BridgeHandler } from '../gateway/bridge.js';
import { SqlError, SqlState } from '../util/errors.js';
import { type MlServices, SAGEMAKER_PAYLOAD_LIMIT_BYTES } from './client.js';
import { modelInputToCsv } from './model-input.js';
import { retryingThrottled, UNTIMED_STATEMENT_BUDGET_MS } from './throttling.js';

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
 * SageMaker refuses a request over 6 MB; said here as a limit of the call
 * (54000), before anything is sent, rather than as the service's refusal.
 */
function refuseOversizePayload(endpoint: string, payload: string): void {
  const bytes = Buffer.byteLength(payload);
  if (bytes <= SAGEMAKER_PAYLOAD_LIMIT_BYTES) return;
  throw new SqlError(
    SqlState.programLimitExceeded,
    `the model input for endpoint ${endpoint} is ${bytes} bytes as CSV; SageMaker accepts at most ${SAGEMAKER_PAYLOAD_LIMIT_BYTES} bytes (6 MB) per request`,
  );
}

/**
 * Serves the in-database functions' per-row calls (one row per request) by
 * forwarding them to the ML services.
 */
export function perRowHandler(services: MlServices, statistics?: BatchStatistics): BridgeHandler {
  return async (request, signal) => {
    // The bridge does not know the statement's statement_timeout, which stops the call anyway when it fires (its
    // cancel aborts `signal`): a call's throttled retries get the budget of a statement without one, so a long
    // Retry-After fails the call at once instead of holding the backend.
    const retries = { signal, deadline: Date.now() + UNTIMED_STATEMENT_BUDGET_MS };
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
        const [item] = await retryingThrottled(
          () => services.detectSentiment([requireString(request, 'text')], requireString(request, 'language'), signal),
          retries,
        );
        if (item instanceof SqlError) throw item;
        return item;
      }
      case 'sagemaker.invoke_endpoint': {
        statistics?.recordPerRowCall('aws_sagemaker.invoke_endpoint');
        const endpoint = requireString(request, 'endpoint');
        const payload = `${modelInputToCsv(requireString(request, 'input'))}\n`;
        refuseOversizePayload(endpoint, payload);
        const body = await retryingThrottled(() => services.invokeEndpoint(endpoint, payload, signal), retries);
        const output = singleRowOutput(body);
        // (Else PostgreSQL's JSON reading of the answer fails with an error that names neither the endpoint nor
        // the answer.)
        if (output.includes('\u0000')) {
          throw new SqlError(
            SqlState.ioError,
            `endpoint ${endpoint} answered a NUL character, which PostgreSQL's text cannot hold`,
          );
        }
        return { output };
      }
      default:
        throw new SqlError(SqlState.featureNotSupported, `unknown bridge operation ${String(request.op)}`);
    }
  };
}

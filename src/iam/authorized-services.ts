/**
 * The ML services as the database reaches them, with access control: every
 * call — batch mode or per row — is checked against the role attached for its
 * service before anything leaves the gateway. A refused call makes no request.
 */
import type { MlServices, SentimentItem } from '../ml/client.js';
import type { SqlError } from '../util/errors.js';
import type { ServiceAuthorizer } from './authorizer.js';

export class AuthorizedMlServices implements MlServices {
  readonly invokeEndpointRows?: MlServices['invokeEndpointRows'];

  constructor(
    private readonly inner: MlServices,
    readonly authorizer: ServiceAuthorizer,
  ) {
    const rows = inner.invokeEndpointRows?.bind(inner);
    if (rows) {
      this.invokeEndpointRows = (endpointName, features, signal) =>
        rows(this.authorizeEndpoint(endpointName), features, signal);
    }
  }

  async detectSentiment(
    texts: string[],
    languageCode: string,
    signal?: AbortSignal,
  ): Promise<(SentimentItem | SqlError)[]> {
    // The gateway always sends BatchDetectSentiment, per row too (a batch of one).
    this.authorizer.authorize('comprehend', 'comprehend:BatchDetectSentiment', this.authorizer.comprehendResource());
    return this.inner.detectSentiment(texts, languageCode, signal);
  }

  async invokeEndpoint(endpointName: string, csvBody: string, signal?: AbortSignal): Promise<string> {
    return this.inner.invokeEndpoint(this.authorizeEndpoint(endpointName), csvBody, signal);
  }

  /** Checks InvokeEndpoint on the endpoint's ARN; returns its name as the service knows it. */
  private authorizeEndpoint(endpointName: string): string {
    const endpoint = this.authorizer.resolveEndpoint(endpointName);
    this.authorizer.authorize('sagemaker', 'sagemaker:InvokeEndpoint', endpoint.arn);
    return endpoint.name;
  }
}

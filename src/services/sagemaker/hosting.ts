/**
 * SageMaker hosting: models, endpoint configurations and endpoints, their
 * persistence, and the endpoint lifecycle.
 *
 *   CreateEndpoint  → Creating  → (variants loaded) → InService | Failed
 *   UpdateEndpoint  → Updating  → the old variants keep serving until the new ones
 *                                 are loaded, then swap → InService (on failure the
 *                                 old ones stay, with a FailureReason)
 *   restart         → SystemUpdating → InService | Failed (what was serving is reloaded)
 *
 * Every load carries a generation number; a load that finishes after its endpoint
 * was deleted or re-targeted is discarded.
 */
import type { Logger } from '../../util/log.js';
import type { AwsError } from '../errors.js';
import { alreadyExists, notFound, validationException } from './errors.js';
import { listPage } from './list-query.js';
import type { ModelDataResolver } from './model-data.js';
import { type ArnResource, type ArnScope, arnOf, nameKey } from './names.js';
import {
  type EndpointConfigRecord,
  type EndpointRecord,
  type EndpointStatus,
  endpointConfigFromRequest,
  type ModelRecord,
  modelFromRequest,
  nowSeconds,
  servingContainer,
} from './resources.js';
import type { JsonStateStore } from './state-store.js';
import { describeVariants, type LiveVariant, loadVariants } from './variant-loader.js';

const MODELS = 'models';
const CONFIGS = 'endpoint-configs';
const ENDPOINTS = 'endpoints';

interface LiveEndpoint {
  record: EndpointRecord;
  /** What answers invocations now; undefined until the first load succeeds. */
  variants: LiveVariant[] | undefined;
  generation: number;
  /** Settles when the load in progress (if any) has finished, successfully or not. */
  loading: Promise<void> | undefined;
}

export interface HostingOptions {
  scope: ArnScope;
  store: JsonStateStore;
  modelData: ModelDataResolver;
  logger: Logger;
  /** Called with the ids of models no endpoint serves any more (the worker pool drops them). */
  onModelsRetired?: (modelIds: string[]) => void;
}

export class SageMakerHosting {
  private readonly models = new Map<string, ModelRecord>();
  private readonly configs = new Map<string, EndpointConfigRecord>();
  private readonly endpoints = new Map<string, LiveEndpoint>();
  private generations = 0;

  constructor(private readonly options: HostingOptions) {}

  get scope(): ArnScope {
    return this.options.scope;
  }

  arn(resource: ArnResource, name: string): string {
    return arnOf(this.options.scope, resource, name);
  }

  /** Reads the persisted state and reloads every endpoint that was serving (or about to). */
  async start(): Promise<void> {
    const { store } = this.options;
    for (const model of await store.list<ModelRecord>(MODELS)) this.models.set(nameKey(model.ModelName), model);
    for (const config of await store.list<EndpointConfigRecord>(CONFIGS)) {
      this.configs.set(nameKey(config.EndpointConfigName), config);
    }
    for (const record of await store.list<EndpointRecord>(ENDPOINTS)) {
      const live: LiveEndpoint = { record, variants: undefined, generation: 0, loading: undefined };
      this.endpoints.set(nameKey(record.EndpointName), live);
      if (record.EndpointStatus === 'Failed') continue;
      // An interrupted update falls back to the configuration that was serving.
      this.deploy(
        live,
        record.EndpointConfigName,
        record.EndpointStatus === 'Creating' ? 'Creating' : 'SystemUpdating',
      );
    }
  }

  /**
   * Shutdown: loads still in progress are abandoned (their result will be dropped,
   * and a slow artifact source cannot hold shutdown up); pending writes are finished.
   */
  async close(): Promise<void> {
    for (const live of this.endpoints.values()) live.generation = -1;
    await this.options.store.flush();
  }

  // ── models ────────────────────────────────────────────────────────────────

  async createModel(input: Record<string, unknown>): Promise<ModelRecord> {
    const record = modelFromRequest(input, (name) => this.arn('model', name));
    const key = nameKey(record.ModelName);
    if (this.models.has(key)) throw alreadyExists('model', record.ModelArn);
    const url = servingContainer(record)?.ModelDataUrl as string;
    try {
      await this.options.modelData.check(url);
    } catch (error) {
      throw validationException((error as Error).message);
    }
    // Checked again: another CreateModel for the same name may have finished meanwhile.
    if (this.models.has(key)) throw alreadyExists('model', record.ModelArn);
    this.models.set(key, record);
    await this.options.store.put(MODELS, key, record);
    return record;
  }

  describeModel(name: string): ModelRecord {
    const record = this.models.get(nameKey(name));
    if (!record) throw notFound('model', this.arn('model', name));
    return record;
  }

  /** Like SageMaker, endpoints already serving the model keep serving it. */
  async deleteModel(name: string): Promise<void> {
    const record = this.describeModel(name);
    this.models.delete(nameKey(record.ModelName));
    await this.options.store.delete(MODELS, nameKey(record.ModelName));
  }

  listModels(input: Record<string, unknown>) {
    const items = [...this.models.values()].map((record) => ({
      name: record.ModelName,
      creationTime: record.CreationTime,
      record,
    }));
    const { page, nextToken } = listPage(items, input, ['Name', 'CreationTime']);
    return {
      Models: page.map(({ record }) => ({
        ModelName: record.ModelName,
        ModelArn: record.ModelArn,
        CreationTime: record.CreationTime,
      })),
      NextToken: nextToken,
    };
  }

  // ── endpoint configurations ───────────────────────────────────────────────

  async createEndpointConfig(input: Record<string, unknown>): Promise<EndpointConfigRecord> {
    const record = endpointConfigFromRequest(input, (name) => this.arn('endpoint-config', name));
    const key = nameKey(record.EndpointConfigName);
    if (this.configs.has(key)) throw alreadyExists('endpoint configuration', record.EndpointConfigArn);
    for (const variant of record.ProductionVariants) {
      if (!this.models.has(nameKey(variant.ModelName))) throw notFound('model', this.arn('model', variant.ModelName));
    }
    this.configs.set(key, record);
    await this.options.store.put(CONFIGS, key, record);
    return record;
  }

  describeEndpointConfig(name: string): EndpointConfigRecord {
    const record = this.configs.get(nameKey(name));
    if (!record) throw notFound('endpoint configuration', this.arn('endpoint-config', name));
    return record;
  }

  async deleteEndpointConfig(name: string): Promise<void> {
    const record = this.describeEndpointConfig(name);
    this.configs.delete(nameKey(record.EndpointConfigName));
    await this.options.store.delete(CONFIGS, nameKey(record.EndpointConfigName));
  }

  listEndpointConfigs(input: Record<string, unknown>) {
    const items = [...this.configs.values()].map((record) => ({
      name: record.EndpointConfigName,
      creationTime: record.CreationTime,
      record,
    }));
    const { page, nextToken } = listPage(items, input, ['Name', 'CreationTime']);
    return {
      EndpointConfigs: page.map(({ record }) => ({
        EndpointConfigName: record.EndpointConfigName,
        EndpointConfigArn: record.EndpointConfigArn,
        CreationTime: record.CreationTime,
      })),
      NextToken: nextToken,
    };
  }

  // ── endpoints ─────────────────────────────────────────────────────────────

  async createEndpoint(name: string, configName: string, tags: unknown): Promise<EndpointRecord> {
    const key = nameKey(name);
    const arn = this.arn('endpoint', name);
    if (this.endpoints.has(key)) throw alreadyExists('endpoint', arn);
    const config = this.describeEndpointConfig(configName);
    const now = nowSeconds();
    const record: EndpointRecord = {
      EndpointName: name,
      EndpointArn: arn,
      EndpointConfigName: config.EndpointConfigName,
      EndpointStatus: 'Creating',
      CreationTime: now,
      LastModifiedTime: now,
      ...(tags === undefined ? {} : { Tags: tags }),
    };
    const live: LiveEndpoint = { record, variants: undefined, generation: 0, loading: undefined };
    this.endpoints.set(key, live);
    await this.persist(live);
    this.deploy(live, config.EndpointConfigName, 'Creating');
    return record;
  }

  describeEndpoint(name: string): EndpointRecord {
    return this.liveEndpoint(name).record;
  }

  async updateEndpoint(name: string, configName: string): Promise<EndpointRecord> {
    const live = this.liveEndpoint(name);
    const { record } = live;
    if (record.EndpointStatus === 'Failed') {
      throw validationException(
        `Cannot update failed endpoint "${record.EndpointArn}". Delete it and create it again.`,
      );
    }
    if (record.EndpointStatus !== 'InService') {
      throw validationException(`Cannot update in-progress endpoint "${record.EndpointArn}".`);
    }
    const config = this.describeEndpointConfig(configName);
    this.setStatus(live, 'Updating');
    await this.persist(live);
    this.deploy(live, config.EndpointConfigName, 'Updating');
    return record;
  }

  async deleteEndpoint(name: string): Promise<void> {
    const live = this.liveEndpoint(name);
    this.endpoints.delete(nameKey(live.record.EndpointName));
    live.generation = -1; // any load still running is discarded when it finishes
    this.retire(live.variants);
    live.variants = undefined;
    await this.options.store.delete(ENDPOINTS, nameKey(live.record.EndpointName));
  }

  listEndpoints(input: Record<string, unknown>) {
    const items = [...this.endpoints.values()].map(({ record }) => ({
      name: record.EndpointName,
      creationTime: record.CreationTime,
      lastModifiedTime: record.LastModifiedTime,
      status: record.EndpointStatus,
      record,
    }));
    const { page, nextToken } = listPage(items, input, ['Name', 'CreationTime', 'Status']);
    return {
      Endpoints: page.map(({ record }) => ({
        EndpointName: record.EndpointName,
        EndpointArn: record.EndpointArn,
        CreationTime: record.CreationTime,
        LastModifiedTime: record.LastModifiedTime,
        EndpointStatus: record.EndpointStatus,
      })),
      NextToken: nextToken,
    };
  }

  // ── runtime ───────────────────────────────────────────────────────────────

  /**
   * The variants that answer an invocation now. An endpoint being reloaded after a
   * restart is waited for, so a restart looks like a slow request, not an error.
   */
  async servingVariants(
    name: string,
    notServing: (record: EndpointRecord | undefined) => AwsError,
  ): Promise<{ record: EndpointRecord; variants: LiveVariant[] }> {
    let live = this.endpoints.get(nameKey(name));
    if (live?.record.EndpointStatus === 'SystemUpdating' && !live.variants) {
      await live.loading;
      live = this.endpoints.get(nameKey(name));
    }
    if (!live?.variants) throw notServing(live?.record);
    return { record: live.record, variants: live.variants };
  }

  private liveEndpoint(name: string): LiveEndpoint {
    const live = this.endpoints.get(nameKey(name));
    if (!live) throw notFound('endpoint', this.arn('endpoint', name));
    return live;
  }

  /** Loads `configName` in the background and, when it is ready, makes it what the endpoint serves. */
  private deploy(live: LiveEndpoint, configName: string, status: EndpointStatus): void {
    const generation = ++this.generations;
    live.generation = generation;
    this.setStatus(live, status);
    const current = () => live.generation === generation;
    live.loading = (async () => {
      // Let CreateEndpoint/UpdateEndpoint answer before loading starts, as SageMaker does.
      await new Promise<void>((resolve) => setImmediate(resolve));
      let variants: LiveVariant[];
      try {
        const config = this.configs.get(nameKey(configName));
        if (!config) throw new Error(`Endpoint configuration ${configName} does not exist.`);
        variants = await loadVariants(config, (model) => this.models.get(nameKey(model)), this.options.modelData);
      } catch (error) {
        if (!current()) return;
        this.failDeployment(live, configName, (error as Error).message);
        return;
      }
      if (!current()) {
        this.retire(variants);
        return;
      }
      const previous = live.variants;
      live.variants = variants;
      live.record.EndpointConfigName = configName;
      live.record.ProductionVariants = describeVariants(variants);
      delete live.record.FailureReason;
      this.setStatus(live, 'InService');
      this.retire(previous);
      this.options.logger.info({ endpoint: live.record.EndpointName, config: configName }, 'endpoint in service');
    })()
      .catch((error) => this.options.logger.error({ err: error }, 'endpoint deployment failed unexpectedly'))
      .finally(() => {
        if (current()) {
          live.loading = undefined;
          this.persist(live).catch((error) =>
            this.options.logger.error({ err: error, endpoint: live.record.EndpointName }, 'cannot save endpoint state'),
          );
        }
      });
  }

  private failDeployment(live: LiveEndpoint, configName: string, reason: string): void {
    const { record } = live;
    this.options.logger.warn(
      { endpoint: record.EndpointName, config: configName, reason },
      'endpoint deployment failed',
    );
    if (record.EndpointStatus === 'Updating' && live.variants) {
      // SageMaker rolls a failed update back: the endpoint stays in service on its old configuration.
      record.FailureReason = `Updating to endpoint configuration ${configName} failed, the endpoint still serves ${record.EndpointConfigName}: ${reason}`;
      this.setStatus(live, 'InService');
      return;
    }
    record.FailureReason = reason;
    this.setStatus(live, 'Failed');
  }

  private setStatus(live: LiveEndpoint, status: EndpointStatus): void {
    live.record.EndpointStatus = status;
    live.record.LastModifiedTime = nowSeconds();
  }

  private persist(live: LiveEndpoint): Promise<void> {
    if (live.generation === -1) return Promise.resolve();
    return this.options.store.put(ENDPOINTS, nameKey(live.record.EndpointName), live.record);
  }

  private retire(variants: LiveVariant[] | undefined): void {
    if (variants?.length) this.options.onModelsRetired?.(variants.map((variant) => variant.model.id));
  }
}

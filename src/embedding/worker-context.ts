// What the gateway needs for text in, text out: the configured provider, the
// bounded cache of query embeddings, each tenant's rate, the limits, the
// embedder each request's GraphQL context carries (`sheratanEmbedder`, bound
// to the caller's tenant for its rate), and the built-in embedding worker.
import pg from 'pg';
import type { Config } from '../config/config.ts';
import { log } from '../config/log.ts';
import { chunkText } from './chunker.ts';
import { EmbeddingError, createEmbeddingProvider, type EmbeddingProvider } from './provider.ts';
import { QueryEmbeddingCache } from './query-cache.ts';
import { EmbeddingWorker } from './worker.ts';
import { ProviderPause, TenantRate } from './worker-rate.ts';

/** The embedder a request's GraphQL context carries (plugins/text-search.ts SheratanEmbedder). */
export interface RequestEmbedder {
  model: string;
  dimension: number;
  embedQuery(text: string): Promise<number[]>;
  embedTexts(texts: string[]): Promise<number[][]>;
  chunkText(text: string): Array<{ index: number; content: string; start: number; end: number }>;
}

export interface TextLimits {
  maxDocumentChars: number;
  embedSyncMaxChars: number;
}

export interface TextServices {
  provider: EmbeddingProvider | null;
  limits: TextLimits;
  rate: TenantRate;
  cache: QueryEmbeddingCache | null;
  /** The built-in worker, once started (EMBEDDING_WORKER_CONCURRENCY > 0 and a provider). */
  worker: EmbeddingWorker | null;
  /** The embedder for one tenant's request; undefined without a provider. */
  embedderFor(tenant: string | undefined): RequestEmbedder | undefined;
  /** Starts the built-in worker on the gateway's login (a no-op without a provider or with concurrency 0). */
  startWorker(authUrl: string): Promise<void>;
  close(): Promise<void>;
}

/** `provider`: the one to use (default: the configured one, createEmbeddingProvider). */
export function createTextServices(config: Config, provider: EmbeddingProvider | null = createEmbeddingProvider(config)): TextServices {
  const rate = new TenantRate(config.embeddingTenantRate);
  const pause = new ProviderPause();
  // Requests do not call a provider that asked to wait (Retry-After): they hear so at once.
  const requestProvider: EmbeddingProvider | null = provider && {
    kind: provider.kind,
    model: provider.model,
    dimension: provider.dimension,
    async embed(texts, options) {
      const left = pause.remainingMs();
      if (left > 0) {
        throw new EmbeddingError(
          'EMBEDDING_RATE_LIMITED',
          `the embedding provider (${provider.model}) asked to wait ${left} ms more (Retry-After); retry shortly`,
          {
            retryable: true,
            retryAfterMs: left,
          },
        );
      }
      try {
        return await provider.embed(texts, options);
      } catch (err) {
        pause.note(err);
        throw err;
      }
    },
    close: () => provider.close(),
  };
  const cache = requestProvider ? new QueryEmbeddingCache(requestProvider, config.queryCacheSize) : null;
  const chunking = { maxChars: config.chunkMaxChars, overlapChars: config.chunkOverlapChars };
  const limits = { maxDocumentChars: config.maxDocumentChars, embedSyncMaxChars: config.embedSyncMaxChars };
  const overRate = (what: string) =>
    new EmbeddingError(
      'EMBEDDING_RATE_LIMITED',
      `${what}: this tenant is above its embedding rate of ${rate.perSecond} texts per second (EMBEDDING_TENANT_RATE); retry shortly`,
      {
        retryable: true,
        retryAfterMs: 1000,
      },
    );
  const services: TextServices = {
    provider,
    limits,
    rate,
    cache,
    worker: null,
    embedderFor(tenant) {
      if (!provider || !cache) return undefined;
      const who = tenant ?? '';
      return {
        model: provider.model,
        dimension: provider.dimension,
        async embedQuery(text) {
          if (!rate.tryTake(who, 1)) throw overRate('search by text');
          return cache.embed(text, who);
        },
        async embedTexts(texts) {
          if (!rate.tryTake(who, texts.length)) throw overRate('ingestDocument');
          return requestProvider!.embed(texts);
        },
        chunkText: (text) => chunkText(text, chunking),
      };
    },
    async startWorker(authUrl) {
      if (!provider || services.worker) return;
      if (config.embeddingWorkerConcurrency === 0) {
        // Workers run elsewhere (npm run worker): the triggers still queue their work.
        await declareVectorizer(authUrl, provider, config.embeddingJobAttempts);
        return;
      }
      const worker = new EmbeddingWorker({
        authUrl,
        provider,
        concurrency: config.embeddingWorkerConcurrency,
        batchSize: config.embeddingBatchSize,
        chunkMaxChars: config.chunkMaxChars,
        chunkOverlapChars: config.chunkOverlapChars,
        maxDocumentChars: config.maxDocumentChars,
        rate,
        pause,
        retryBaseMs: config.embeddingRetryBaseMs,
        jobAttempts: config.embeddingJobAttempts,
        jobLockTimeoutS: config.jobLockTimeoutS,
        log,
      });
      await worker.start();
      services.worker = worker;
    },
    async close() {
      await services.worker?.stop();
      services.worker = null;
      await provider?.close();
    },
  };
  return services;
}

/** Tells the database which provider embeds (the triggers queue jobs from now on). */
export async function declareVectorizer(authUrl: string, provider: EmbeddingProvider, attempts: number): Promise<void> {
  const client = new pg.Client(authUrl);
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('select sheratan_private.set_vectorizer($1, $2, $3)', [provider.model, provider.dimension, attempts]);
  } finally {
    await client.end();
  }
}

/**
 * An endpoint's GraphQL context with text in, text out: `inner`'s (claims,
 * settings, facts) plus the limits and, with a provider, the embedder bound
 * to the caller's tenant.
 */
export function withTextContext<C extends { pgSettings?: Record<string, string | undefined> | null }, R>(
  inner: (requestContext: R) => C,
  text: TextServices | undefined,
): (requestContext: R) => C {
  if (!text) return inner;
  return (requestContext) => {
    const base = inner(requestContext);
    const embedder = text.embedderFor(base.pgSettings?.['jwt.claims.tenant'] || undefined);
    return { ...base, sheratanTextLimits: text.limits, ...(embedder ? { sheratanEmbedder: embedder } : {}) };
  };
}

// Who turns text into vectors: one interface for the shipped model (local.ts,
// a worker thread) and any OpenAI-compatible endpoint (openai.ts). Every
// answer is checked here the same way, whoever gave it: one vector per text,
// in order, `dimension` finite numbers each, or an EmbeddingError and nothing
// partial (a caller never stores half a batch).
import type { Config } from '../config/config.ts';
export { EmbeddingError, type EmbeddingErrorCode } from './errors.ts';
import { LocalEmbeddingProvider } from './local.ts';
import { OpenAiEmbeddingProvider } from './openai.ts';

export interface EmbeddingProvider {
  readonly kind: 'local' | 'openai';
  /** Recorded on every chunk it embeds, e.g. 'local:use-lite-512' or 'openai:text-embedding-3-small'. */
  readonly model: string;
  readonly dimension: number;
  /** One vector per text, same order; finite numbers, length === dimension, else throws EmbeddingError (nothing partial). */
  embed(texts: readonly string[], options?: { signal?: AbortSignal }): Promise<number[][]>;
  close(): Promise<void>;
}

/** The configured provider, or null with EMBEDDING_PROVIDER=none (clients bring vectors). */
export function createEmbeddingProvider(config: Config): EmbeddingProvider | null {
  switch (config.embeddingProvider) {
    case 'none':
      return null;
    case 'local':
      return new LocalEmbeddingProvider({ batchSize: config.embeddingBatchSize });
    case 'openai':
      return new OpenAiEmbeddingProvider({
        baseUrl: config.embeddingBaseUrl!,
        model: config.embeddingModel!,
        apiKey: config.embeddingApiKey,
        dimension: config.vectorDimension,
        dimensions: config.embeddingDimensions,
        batchSize: config.embeddingBatchSize,
        timeoutMs: config.embeddingTimeoutMs,
        maxRetries: config.embeddingMaxRetries,
      });
  }
}

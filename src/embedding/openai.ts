// EMBEDDING_PROVIDER=openai: any OpenAI-compatible embeddings endpoint
// (OpenAI, Ollama, vLLM, Hugging Face TEI, LM Studio). Texts go in batches of
// EMBEDDING_BATCH_SIZE; each call has its own EMBEDDING_TIMEOUT_MS and is
// retried EMBEDDING_MAX_RETRIES times after a 429, a 5xx, a timeout or a
// refused connection, with exponential back-off or the provider's Retry-After.
// The key travels only in the Authorization header: messages name the
// provider by its base URL, and any text the provider sends back is scrubbed
// of the key before it goes into a message.
import { log } from '../config/log.ts';
import { checkInputs, checkVectors, EmbeddingError } from './errors.ts';
import type { EmbeddingProvider } from './provider.ts';

export interface OpenAiOptions {
  /** The API base as the OpenAI SDKs take it (https://api.openai.com/v1); a bare origin gets /v1. */
  baseUrl: string;
  model: string;
  apiKey?: string | undefined;
  /** The column's dimension: every vector must have this many numbers. */
  dimension: number;
  /** Sent as `dimensions` when set (models that can shorten their vectors). */
  dimensions?: number | undefined;
  batchSize?: number;
  timeoutMs?: number;
  maxRetries?: number;
  /** First back-off (ms); doubled each retry, with jitter, up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A Retry-After longer than this is not waited for: the call fails retryable with retryAfterMs, for a job queue to reschedule. */
  maxRetryAfterMs?: number;
}

/** `${base}/embeddings` when the base has a path (…/v1), else `${base}/v1/embeddings` (a bare TEI or vLLM origin). */
export function embeddingsUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  const pathname = url.pathname.replace(/\/+$/, '');
  return `${url.origin}${pathname || '/v1'}/embeddings`;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export class OpenAiEmbeddingProvider implements EmbeddingProvider {
  readonly kind = 'openai' as const;
  readonly model: string;
  readonly dimension: number;
  /** Where requests go (no credentials in it: config refuses a base URL that carries any). */
  readonly url: string;
  private readonly options: Required<Omit<OpenAiOptions, 'apiKey' | 'dimensions'>> & Pick<OpenAiOptions, 'apiKey' | 'dimensions'>;
  private closing = new AbortController();

  constructor(options: OpenAiOptions) {
    this.options = { batchSize: 64, timeoutMs: 30_000, maxRetries: 4, backoffMs: 250, maxBackoffMs: 10_000, maxRetryAfterMs: 30_000, ...options };
    this.url = embeddingsUrl(options.baseUrl);
    this.model = `openai:${options.model}`;
    this.dimension = options.dimension;
  }

  /** The provider as messages name it: the URL and model, never the key. */
  get who(): string {
    return `embedding provider ${this.url} (model ${this.options.model})`;
  }

  /** Provider-supplied text for a message: one line, short, without the key. */
  private scrub(text: string): string {
    let out = text.replace(/\s+/g, ' ').trim().slice(0, 300);
    const key = this.options.apiKey;
    if (key) out = out.split(key).join('***');
    return out;
  }

  async embed(texts: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number[][]> {
    checkInputs(texts, this.who);
    const out: number[][] = [];
    // Batches one after another: a provider's rate limit is per key, so parallel batches mostly buy 429s.
    for (let i = 0; i < texts.length; i += this.options.batchSize) {
      out.push(...(await this.embedBatch(texts.slice(i, i + this.options.batchSize), options.signal)));
    }
    return out;
  }

  private async embedBatch(texts: string[], signal: AbortSignal | undefined): Promise<number[][]> {
    const { maxRetries, backoffMs, maxBackoffMs, maxRetryAfterMs } = this.options;
    const stop = signal ? AbortSignal.any([signal, this.closing.signal]) : this.closing.signal;
    for (let attempt = 0; ; attempt++) {
      let err: EmbeddingError;
      try {
        return await this.request(texts, stop);
      } catch (e) {
        if (!(e instanceof EmbeddingError)) throw e; // the caller's abort
        err = e;
      }
      if (!err.retryable || attempt >= maxRetries) throw err;
      if (err.retryAfterMs !== undefined && err.retryAfterMs > maxRetryAfterMs) throw err;
      const backoff = Math.min(maxBackoffMs, backoffMs * 2 ** attempt) * (0.5 + Math.random() / 2);
      const wait = err.retryAfterMs ?? backoff;
      log('warn', 'embedding provider call failed; retrying', {
        provider: this.url,
        code: err.code,
        error: err.message,
        attempt: attempt + 1,
        waitMs: Math.round(wait),
      });
      await sleep(wait, stop);
    }
  }

  /** One HTTP call, its answer checked. Throws EmbeddingError (retryable or not), or the caller's abort reason. */
  private async request(texts: string[], stop: AbortSignal): Promise<number[][]> {
    const { apiKey, timeoutMs, dimensions, model } = this.options;
    const timeout = AbortSignal.timeout(timeoutMs);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    // A lone surrogate is not valid UTF-8; providers refuse the whole batch for one. U+FFFD keeps the rest of the text.
    const body = JSON.stringify({ model, input: texts.map(wellFormed), encoding_format: 'float', ...(dimensions ? { dimensions } : {}) });
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.url, { method: 'POST', headers, body, signal: AbortSignal.any([stop, timeout]) });
      text = await response.text();
    } catch (e) {
      if (stop.aborted) {
        if (this.closing.signal.aborted) throw new EmbeddingError('EMBEDDING_PROVIDER_UNAVAILABLE', `${this.who}: the provider was closed`);
        throw stop.reason;
      }
      if (timeout.aborted) {
        throw new EmbeddingError('EMBEDDING_PROVIDER_TIMEOUT', `${this.who} did not answer within ${timeoutMs} ms (EMBEDDING_TIMEOUT_MS)`, { retryable: true });
      }
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const reason = this.scrub(cause?.code ?? cause?.message ?? (e as Error).message);
      throw new EmbeddingError('EMBEDDING_PROVIDER_UNAVAILABLE', `${this.who} could not be reached: ${reason}`, { retryable: true });
    }
    if (!response.ok) {
      const status = response.status;
      const detail = this.scrub(errorText(text));
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      const what = `${this.who} answered HTTP ${status}${detail ? `: ${detail}` : ''}`;
      if (status === 429)
        throw new EmbeddingError('EMBEDDING_RATE_LIMITED', what, { retryable: true, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
      if (status >= 500 || status === 408) {
        throw new EmbeddingError('EMBEDDING_PROVIDER_UNAVAILABLE', what, { retryable: true, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
      }
      if (status === 400 || status === 413 || status === 422) throw new EmbeddingError('EMBEDDING_INPUT_INVALID', what);
      // 401, 403, 404…: the key, the model or the URL is wrong; retrying will not help.
      throw new EmbeddingError('EMBEDDING_PROVIDER_UNAVAILABLE', `${what} (check EMBEDDING_BASE_URL, EMBEDDING_MODEL and EMBEDDING_API_KEY)`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new EmbeddingError('EMBEDDING_BAD_RESPONSE', `${this.who} answered a body that is not JSON: ${this.scrub(text.slice(0, 80))}`);
    }
    const data = (json as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) throw new EmbeddingError('EMBEDDING_BAD_RESPONSE', `${this.who} answered JSON without a data list`);
    // OpenAI returns `index` per item; honour it (and insist it is a permutation), else keep the order given.
    const ordered = new Array<unknown>(data.length);
    data.forEach((item: unknown, i) => {
      const index = (item as { index?: unknown } | null)?.index ?? i;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= data.length || ordered[index] !== undefined) {
        throw new EmbeddingError(
          'EMBEDDING_BAD_RESPONSE',
          `${this.who} answered item ${i} with index ${String(index)}, not one of 0…${data.length - 1} once each`,
        );
      }
      ordered[index] = (item as { embedding?: unknown } | null)?.embedding ?? null;
    });
    return checkVectors(ordered, texts.length, this.dimension, this.who);
  }

  async close(): Promise<void> {
    this.closing.abort();
  }
}

/** Lone surrogates become U+FFFD (String.prototype.toWellFormed, which the TypeScript target here does not declare). */
function wellFormed(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** The message of an OpenAI-style error body ({"error":{"message":…}}), else the text. */
function errorText(body: string): string {
  try {
    const json = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    const message = typeof json.error === 'string' ? json.error : (json.error?.message ?? json.message);
    if (typeof message === 'string') return message;
  } catch {
    // not JSON: the text itself
  }
  return body;
}

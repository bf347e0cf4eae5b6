// The openai provider against a real HTTP server process that speaks the
// OpenAI embeddings API with the local model's vectors
// (test/support/openai-server.ts): shapes, batches, `dimensions`, retries on
// 429/5xx honouring Retry-After, timeouts, every kind of bad answer refused
// whole, and the key nowhere but the Authorization header.
import { parseConfig } from '../../src/config/config.ts';
import { setLogLevel } from '../../src/config/log.ts';
import { embeddingsUrl, OpenAiEmbeddingProvider, parseRetryAfter, type OpenAiOptions } from '../../src/embedding/openai.ts';
import { LocalEmbeddingProvider } from '../../src/embedding/local.ts';
import { createEmbeddingProvider, EmbeddingError } from '../../src/embedding/provider.ts';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';

const KEY = 'sk-test-6f1d0c9a-never-print-me';
let server: OpenAiServer;
let local: LocalEmbeddingProvider;

beforeAll(async () => {
  server = await startOpenAiServer({ key: KEY });
  local = new LocalEmbeddingProvider();
});
afterAll(async () => {
  await server?.stop();
  await local?.close();
});
beforeEach(() => server.setFault({}));

const provider = (options: Partial<OpenAiOptions> = {}): OpenAiEmbeddingProvider =>
  new OpenAiEmbeddingProvider({
    baseUrl: server.url,
    model: 'text-embedding-3-small',
    apiKey: KEY,
    dimension: 512,
    batchSize: 4,
    timeoutMs: 5000,
    maxRetries: 3,
    backoffMs: 20,
    ...options,
  });

const cosine = (a: number[], b: number[]): number =>
  a.reduce((s, x, i) => s + x * b[i]!, 0) / Math.sqrt(a.reduce((s, x) => s + x * x, 0) * b.reduce((s, x) => s + x * x, 0));

const failure = async (p: Promise<unknown>): Promise<EmbeddingError> => {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EmbeddingError);
  return err as EmbeddingError;
};

test('the request URL follows the base: …/v1 gets /embeddings, a bare origin gets /v1/embeddings', () => {
  expect(embeddingsUrl('https://api.openai.com/v1')).toBe('https://api.openai.com/v1/embeddings');
  expect(embeddingsUrl('http://localhost:11434/v1/')).toBe('http://localhost:11434/v1/embeddings');
  expect(embeddingsUrl('http://tei:8080')).toBe('http://tei:8080/v1/embeddings');
  expect(embeddingsUrl('http://gw/openai/v1')).toBe('http://gw/openai/v1/embeddings');
  expect(parseRetryAfter('2')).toBe(2000);
  expect(parseRetryAfter(new Date(Date.now() + 60_000).toUTCString())).toBeGreaterThan(55_000);
  expect(parseRetryAfter('soon')).toBeUndefined();
});

test('from the configuration: the local model’s vectors, in order, across batches; the model named; the key only in the header', async () => {
  const p = createEmbeddingProvider(
    parseConfig({
      EMBEDDING_PROVIDER: 'openai',
      EMBEDDING_BASE_URL: server.url,
      EMBEDDING_MODEL: 'text-embedding-3-small',
      EMBEDDING_API_KEY: KEY,
      VECTOR_DIMENSION: '512',
      EMBEDDING_BATCH_SIZE: '3',
    }),
  )!;
  expect(p).toMatchObject({ kind: 'openai', model: 'openai:text-embedding-3-small', dimension: 512 });
  const texts = Array.from({ length: 10 }, (_, i) => `Sentence ${i} about ${['vector indexes', 'cooking pasta', 'mountain hiking'][i % 3]}.`);
  const remote = await p.embed(texts);
  const direct = await local.embed(texts);
  remote.forEach((v, i) => expect(cosine(v, direct[i]!)).toBeGreaterThan(0.9999));
  const calls = await server.calls();
  expect(calls.map((c) => c.inputs)).toEqual([3, 3, 3, 1]);
  for (const c of calls) {
    expect(c).toMatchObject({ method: 'POST', path: '/v1/embeddings', model: 'text-embedding-3-small', dimensions: null, authorization: `Bearer ${KEY}` });
    expect(c.body).not.toContain(KEY);
    expect(c.path).not.toContain(KEY);
  }
  await p.close();
});

test('rankings stay meaningful through the provider: a paraphrased question is nearest its passage', async () => {
  const [q, hnsw, ivf, other] = await provider().embed([
    'Which vector index works before any data is loaded?',
    'HNSW indexes can be built on an empty table',
    'IVFFlat lists are chosen from the rows present when the index is built',
    'The invoice is due at the end of the month',
  ]);
  expect(cosine(q!, hnsw!)).toBeGreaterThan(cosine(q!, ivf!));
  expect(cosine(q!, hnsw!)).toBeGreaterThan(cosine(q!, other!) + 0.2);
});

test('EMBEDDING_DIMENSIONS is sent as `dimensions` and the answer has that many numbers', async () => {
  const config = parseConfig({
    EMBEDDING_PROVIDER: 'openai',
    EMBEDDING_BASE_URL: server.url,
    EMBEDDING_MODEL: 'm',
    EMBEDDING_API_KEY: KEY,
    EMBEDDING_DIMENSIONS: '256',
  });
  expect(config.vectorDimension).toBe(256);
  const p = createEmbeddingProvider(config)!;
  const [v] = await p.embed(['shortened']);
  expect(v).toHaveLength(256);
  expect((await server.calls())[0]!.dimensions).toBe(256);
});

test('429 with Retry-After: waits as told, then succeeds', async () => {
  await server.setFault({ rateLimit: { count: 2, retryAfter: '1' } });
  const vectors = await provider().embed(['rate limited at first']);
  expect(vectors).toHaveLength(1);
  const calls = await server.calls();
  expect(calls.map((c) => c.status)).toEqual([429, 429, 200]);
  expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(950);
  expect(calls[2]!.at - calls[1]!.at).toBeGreaterThanOrEqual(950);
});

test('429 without Retry-After and 5xx back off and retry; past EMBEDDING_MAX_RETRIES the error is retryable for the job queue', async () => {
  await server.setFault({ rateLimit: { count: 1 }, serverError: { count: 2, status: 503 } });
  expect(await provider().embed(['flaky'])).toHaveLength(1);
  expect((await server.calls()).map((c) => c.status)).toEqual([429, 503, 503, 200]);

  await server.setFault({ serverError: { count: 100 } });
  const err = await failure(provider({ maxRetries: 2 }).embed(['down']));
  expect(err).toMatchObject({ code: 'EMBEDDING_PROVIDER_UNAVAILABLE', retryable: true });
  expect(err.message).toMatch(/embedding provider http:\/\/127\.0\.0\.1:\d+\/v1\/embeddings \(model text-embedding-3-small\) answered HTTP 500/);
  expect(await server.calls()).toHaveLength(3);
});

test('a Retry-After longer than the provider waits fails at once, retryable, with retryAfterMs for the job queue', async () => {
  await server.setFault({ rateLimit: { count: 5, retryAfter: '120' } });
  const err = await failure(provider().embed(['storm']));
  expect(err).toMatchObject({ code: 'EMBEDDING_RATE_LIMITED', retryable: true, retryAfterMs: 120_000 });
  expect(await server.calls()).toHaveLength(1);
});

test('a hanging provider times out after EMBEDDING_TIMEOUT_MS, each retry with its own limit; a slow one within it is fine', async () => {
  await server.setFault({ hang: true });
  const started = Date.now();
  const err = await failure(provider({ timeoutMs: 300, maxRetries: 1 }).embed(['hang']));
  expect(err).toMatchObject({ code: 'EMBEDDING_PROVIDER_TIMEOUT', retryable: true });
  expect(err.message).toMatch(/did not answer within 300 ms \(EMBEDDING_TIMEOUT_MS\)/);
  expect(Date.now() - started).toBeGreaterThanOrEqual(600);
  expect(await server.calls()).toHaveLength(2);

  await server.setFault({ delayMs: 200 });
  expect(await provider({ timeoutMs: 3000 }).embed(['slow but fine'])).toHaveLength(1);
});

test.each([
  [{ wrongDimension: true }, 'EMBEDDING_DIMENSION_MISMATCH', /answered 511 numbers for text 0 but the column holds 512/],
  [{ nan: true }, 'EMBEDDING_BAD_RESPONSE', /not JSON/],
  [{ infinity: true }, 'EMBEDDING_BAD_RESPONSE', /answered Infinity at position 0 of vector 0; vectors must be finite numbers/],
  [{ wrongCount: true }, 'EMBEDDING_BAD_RESPONSE', /answered 3 vectors for 4 texts/],
  [{ malformed: true }, 'EMBEDDING_BAD_RESPONSE', /a body that is not JSON/],
])('a bad answer %p is refused whole, not retried: %s', async (fault, code, message) => {
  await server.setFault(fault);
  const err = await failure(provider().embed(['one', 'two', 'three', 'four']));
  expect(err).toMatchObject({ code, retryable: false });
  expect(err.message).toMatch(message);
  expect(await server.calls()).toHaveLength(1);
});

test('nothing partial: a bad second batch fails the whole call though the first was good', async () => {
  await server.setFault({ after: 1, wrongDimension: true });
  const err = await failure(provider({ batchSize: 2 }).embed(['a', 'b', 'c', 'd']));
  expect(err.code).toBe('EMBEDDING_DIMENSION_MISMATCH');
  expect((await server.calls()).map((c) => c.status)).toEqual([200, 200]);
});

test('a dimension other than the column’s, configured, fails every call with both numbers', async () => {
  const err = await failure(provider({ dimension: 384 }).embed(['x']));
  expect(err.message).toMatch(/answered 512 numbers for text 0 but the column holds 384/);
});

test('the caller’s abort ends a call at once, even while it waits to retry, and is not retried', async () => {
  await server.setFault({ rateLimit: { count: 5, retryAfter: '20' } });
  const controller = new AbortController();
  const pending = provider().embed(['x'], { signal: controller.signal });
  await new Promise((r) => setTimeout(r, 200));
  controller.abort(new Error('client went away'));
  await expect(pending).rejects.toThrow('client went away');
  expect(await server.calls()).toHaveLength(1);
});

test('bad input is refused before any call', async () => {
  const err = await failure(provider().embed(['fine', '  ']));
  expect(err.code).toBe('EMBEDDING_INPUT_INVALID');
  expect(await server.calls()).toHaveLength(0);
  // A lone surrogate is made well-formed, not sent as invalid UTF-8.
  expect(await provider().embed(['broken \ud800 text'])).toHaveLength(1);
});

test('the API key appears in no error message and no log line, even when the provider echoes it', async () => {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    lines.push(String(chunk));
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  setLogLevel('debug');
  const messages: string[] = [];
  try {
    // A server that expects another key answers 401 quoting the one it got, as some do.
    const other = await startOpenAiServer({ key: 'sk-some-other-key' });
    try {
      const err = await failure(provider({ baseUrl: other.url }).embed(['x']));
      expect(err.message).toMatch(/answered HTTP 401: Incorrect API key provided: \*\*\*/);
      messages.push(err.message);
    } finally {
      await other.stop();
    }
    for (const fault of [{ rateLimit: { count: 2, retryAfter: '0' } }, { serverError: { count: 9 } }, { hang: true }, { malformed: true }, { nan: true }]) {
      await server.setFault(fault);
      const result = await provider({ maxRetries: 1, timeoutMs: 300 })
        .embed(['y'])
        .catch((e: Error) => e);
      if (result instanceof Error) messages.push(result.message, String(result.stack), JSON.stringify(result));
    }
    await server.stop(); // refused connections too
    const err = await failure(provider({ maxRetries: 1 }).embed(['z']));
    expect(err.code).toBe('EMBEDDING_PROVIDER_UNAVAILABLE');
    messages.push(err.message);
  } finally {
    process.stderr.write = write;
    setLogLevel('silent');
    server = await startOpenAiServer({ key: KEY });
  }
  expect(lines.filter((l) => l.includes('retrying')).length).toBeGreaterThan(2);
  expect(messages.length).toBeGreaterThan(5);
  for (const text of [...messages, ...lines]) expect(text).not.toContain(KEY);
});

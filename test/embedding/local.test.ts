// The local provider with the real shipped model (no mocks): its answers, its
// batching, its turn-taking between calls, and an event loop that stays free
// while it works.
import { parseConfig } from '../../src/config/config.ts';
import { createEmbeddingProvider, EmbeddingError } from '../../src/embedding/provider.ts';
import { LocalEmbeddingProvider } from '../../src/embedding/local.ts';

const cosine = (a: number[], b: number[]): number => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
};

let provider: LocalEmbeddingProvider;
beforeAll(() => {
  provider = new LocalEmbeddingProvider({ batchSize: 16 });
});
afterAll(async () => {
  await provider.close();
});

test('EMBEDDING_PROVIDER=local (the default) makes the local provider: 512 numbers, its model named', async () => {
  const made = createEmbeddingProvider(parseConfig({}))!;
  try {
    expect(made).toBeInstanceOf(LocalEmbeddingProvider);
    expect(made).toMatchObject({ kind: 'local', model: 'local:use-lite-512', dimension: 512 });
  } finally {
    await made.close();
  }
  expect(createEmbeddingProvider(parseConfig({ EMBEDDING_PROVIDER: 'none' }))).toBeNull();
});

test('a paraphrased question is nearest to its passage', async () => {
  const [q, hnsw, ivf, other1, other2] = await provider.embed([
    'Which vector index works before any data is loaded?',
    'HNSW indexes can be built on an empty table',
    'IVFFlat lists are chosen from the rows present when the index is built',
    'The invoice is due at the end of the month',
    'Our office dog likes long walks on the beach',
  ]);
  expect(q).toHaveLength(512);
  const scores = [hnsw, ivf, other1, other2].map((v) => cosine(q!, v!));
  expect(scores[0]).toBe(Math.max(...scores));
  expect(scores[0]! - Math.max(scores[2]!, scores[3]!)).toBeGreaterThan(0.2);
});

test('batches keep the order: 40 texts in batches of 16 equal each text alone; the same text gives the same vector', async () => {
  const texts = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} talks about ${['cats', 'databases', 'rivers', 'music'][i % 4]}.`);
  const together = await provider.embed(texts);
  expect(together).toHaveLength(40);
  for (const i of [0, 15, 16, 17, 31, 32, 39]) {
    const [alone] = await provider.embed([texts[i]!]);
    expect(cosine(alone!, together[i]!)).toBeGreaterThan(0.9999);
  }
});

test('other scripts, emoji, NUL, a lone surrogate and long text all give 512 finite numbers', async () => {
  const texts = ['日本語の文章です。', 'Привет, мир', 'مرحبا بالعالم', '👩‍👩‍👧 family 🎉', 'a\u0000b', 'broken \ud800 surrogate', 'word '.repeat(5000)];
  const vectors = await provider.embed(texts);
  expect(vectors).toHaveLength(texts.length);
  for (const v of vectors) {
    expect(v).toHaveLength(512);
    expect(v.every(Number.isFinite)).toBe(true);
  }
});

test.each([
  [[''], /text 0 is empty or only whitespace/],
  [['fine', ' \n\t '], /text 1 is empty or only whitespace/],
  [['fine', 42], /text 1 is a number, not a string/],
])('bad input %p is refused before any work with EMBEDDING_INPUT_INVALID', async (texts, message) => {
  const err = await provider.embed(texts as string[]).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(EmbeddingError);
  expect(err).toMatchObject({ code: 'EMBEDDING_INPUT_INVALID', retryable: false });
  expect((err as Error).message).toMatch(message);
  expect(await provider.embed([])).toEqual([]);
});

test('calls take turns: a one-text query sent after a 200-text ingest is answered first', async () => {
  const order: string[] = [];
  const bulk = provider.embed(Array.from({ length: 200 }, (_, i) => `bulk text ${i} about storage engines`)).then(() => order.push('bulk'));
  const query = provider.embed(['what is a storage engine?']).then(() => order.push('query'));
  await Promise.all([bulk, query]);
  expect(order).toEqual(['query', 'bulk']);
});

test('an aborted call rejects with its reason and the provider goes on', async () => {
  const controller = new AbortController();
  const pending = provider.embed(
    Array.from({ length: 100 }, (_, i) => `text ${i}`),
    { signal: controller.signal },
  );
  controller.abort(new Error('client went away'));
  await expect(pending).rejects.toThrow('client went away');
  expect(await provider.embed(['still here'])).toHaveLength(1);
});

test('the event loop stays free: a 10 ms timer keeps firing while 500 sentences embed', async () => {
  const texts = Array.from({ length: 500 }, (_, i) => `Sentence ${i}: the quick brown fox jumps over the lazy dog number ${i * 7}.`);
  let last = performance.now();
  let worstGap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worstGap = Math.max(worstGap, now - last);
    last = now;
    ticks++;
  }, 10);
  const started = performance.now();
  const vectors = await provider.embed(texts);
  const elapsed = performance.now() - started;
  clearInterval(timer);
  expect(vectors).toHaveLength(500);
  // In-thread, the loop would stall for the whole run (seconds); the bound is loose for a busy 2-core machine.
  console.log(`500 sentences in ${Math.round(elapsed)} ms; ${ticks} ticks, worst gap ${Math.round(worstGap)} ms`);
  expect(ticks).toBeGreaterThan(elapsed / 10 / 4);
  expect(worstGap).toBeLessThan(Math.max(500, elapsed / 4));
});

test('a crashed model thread fails its calls retryable, and the next call starts a new one', async () => {
  const p = new LocalEmbeddingProvider({ batchSize: 4 });
  try {
    expect(await p.embed(['warm up'])).toHaveLength(1);
    const pending = p.embed(Array.from({ length: 40 }, (_, i) => `text ${i}`));
    // The thread dies mid-call (as on an out-of-memory abort): reach it as the provider holds it.
    await (p as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await expect(pending).rejects.toMatchObject({ code: 'EMBEDDING_PROVIDER_UNAVAILABLE', retryable: true });
    expect(await p.embed(['after the crash'])).toHaveLength(1);
  } finally {
    await p.close();
  }
});

test('after close, a call fails EMBEDDING_PROVIDER_UNAVAILABLE', async () => {
  const p = new LocalEmbeddingProvider();
  expect(await p.embed(['warm up'])).toHaveLength(1);
  await p.close();
  await expect(p.embed(['x'])).rejects.toMatchObject({ code: 'EMBEDDING_PROVIDER_UNAVAILABLE' });
});

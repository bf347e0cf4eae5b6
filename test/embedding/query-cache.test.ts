// The bounded query cache over the real local provider (counted, not mocked).
import { LocalEmbeddingProvider } from '../../src/embedding/local.ts';
import { QueryEmbeddingCache } from '../../src/embedding/query-cache.ts';
import type { EmbeddingProvider } from '../../src/embedding/provider.ts';

let local: LocalEmbeddingProvider;
let calls: string[][];
let counted: EmbeddingProvider;
beforeAll(() => {
  local = new LocalEmbeddingProvider();
  counted = {
    kind: 'local',
    model: local.model,
    dimension: local.dimension,
    embed: (texts, options) => {
      calls.push([...texts]);
      return local.embed(texts, options);
    },
    close: () => local.close(),
  };
});
beforeEach(() => {
  calls = [];
});
afterAll(() => local.close());

test('a repeated query is a hit and costs no provider call; counters say so', async () => {
  const cache = new QueryEmbeddingCache(counted, 10);
  const a = await cache.embed('which index works on an empty table?');
  const b = await cache.embed('which index works on an empty table?');
  expect(b).toBe(a);
  expect(a).toHaveLength(512);
  expect(calls).toHaveLength(1);
  expect({ hits: cache.hits, misses: cache.misses, size: cache.size }).toEqual({ hits: 1, misses: 1, size: 1 });
});

test('bounded: the least recently used entry goes first, never more than maxEntries', async () => {
  const cache = new QueryEmbeddingCache(counted, 3);
  for (const q of ['q1', 'q2', 'q3']) await cache.embed(q);
  await cache.embed('q1'); // q1 is now the most recent; q2 the least
  await cache.embed('q4'); // evicts q2
  expect(cache.size).toBe(3);
  calls = [];
  await cache.embed('q1');
  await cache.embed('q3');
  await cache.embed('q4');
  expect(calls).toEqual([]);
  await cache.embed('q2');
  expect(calls).toEqual([['q2']]);
  for (let i = 0; i < 20; i++) await cache.embed(`more ${i}`);
  expect(cache.size).toBe(3);
});

test('maxEntries 0 keeps nothing', async () => {
  const cache = new QueryEmbeddingCache(counted, 0);
  await cache.embed('same');
  await cache.embed('same');
  expect(calls).toHaveLength(2);
  expect(cache.size).toBe(0);
});

test('concurrent misses for one text share one call; a failure is not kept', async () => {
  const cache = new QueryEmbeddingCache(counted, 10);
  const [a, b, c] = await Promise.all([cache.embed('shared'), cache.embed('shared'), cache.embed('shared')]);
  expect(calls).toHaveLength(1);
  expect(a).toBe(b);
  expect(b).toBe(c);
  await expect(cache.embed('   ')).rejects.toMatchObject({ code: 'EMBEDDING_INPUT_INVALID' });
  await expect(cache.embed('   ')).rejects.toMatchObject({ code: 'EMBEDDING_INPUT_INVALID' });
  expect(calls.filter((t) => t[0] === '   ')).toHaveLength(2);
  expect(cache.size).toBe(1);
});

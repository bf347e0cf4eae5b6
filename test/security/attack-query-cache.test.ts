// Attack: the query-embedding cache as a cross-tenant oracle. Found by the
// attacker of issue 25/26: the gateway keeps one cache of search texts'
// vectors per process (src/embedding/query-cache.ts), keyed by the text
// alone. A text another tenant searched recently is answered from it without
// a provider call: one tenant could learn whether any other tenant searched
// for "acquisition of Globex" by timing its own search for it (no provider
// round trip: milliseconds against tens of milliseconds with a remote
// provider), and the provider's bill and rate follow the first tenant.
//
// The invariant, over generated texts (scripts, emoji, whitespace, lengths
// up to MAX_QUERY_TEXT_LENGTH): a tenant's search by text never reuses
// another tenant's cached embedding (the provider is called for it), while
// the same tenant searching the same text again is served from the cache.
// Provider calls are counted by a real OpenAI-compatible server process
// (test/support/openai-server.ts) answering with the local model's vectors.
import { rng } from '../support/embeddings.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';

let server: OpenAiServer;
let h: Harness;

beforeAll(async () => {
  server = await startOpenAiServer();
  h = await startHarness({
    NODE_ENV: 'production',
    EMBEDDING_PROVIDER: 'openai',
    EMBEDDING_BASE_URL: server.url,
    EMBEDDING_MODEL: 'text-embedding-3-small',
    VECTOR_DIMENSION: '512',
    EMBEDDING_WORKER_CONCURRENCY: '0',
    QUERY_CACHE_SIZE: '1000',
    EMBEDDING_TENANT_RATE: '1000',
  });
}, 240_000);
afterAll(async () => {
  await h?.stop();
  await server?.stop();
});

const SEARCH = 'query ($q: String!) { searchDocumentChunks(query: $q, first: 3) { distance } }';
const embeddingCalls = async (): Promise<number> => (await server.calls()).filter((c) => c.path.endsWith('/embeddings') && c.status === 200).length;

/** Search texts of many kinds, all distinct. */
function texts(seed: number, n: number): string[] {
  const next = rng(seed);
  const parts = ['acquisition of Globex', 'مراجعة العقد', '合併の計画', '🚀 launch date', 'Ünïcödé  spacing\t\n', 'q3 layoffs', 'α β γ'];
  return Array.from({ length: n }, (_, i) => {
    const base = parts[Math.floor(next() * parts.length)]!;
    const repeat = 1 + Math.floor(next() * (next() < 0.2 ? 200 : 3));
    return `${base} ${i} ${Math.floor(next() * 1e9)} `.repeat(repeat).slice(0, 1900);
  });
}

test("a tenant's search by text never reuses another tenant's cached embedding; its own repeat is a cache hit", async () => {
  const victim = h.token('sheratan_app', 'victim', 'v');
  const prober = h.token('sheratan_app', 'prober', 'p');
  const search = async (token: string, q: string): Promise<number> => {
    const before = await embeddingCalls();
    const res = await h.graphql(SEARCH, { variables: { q }, token });
    expect(res.body.errors).toBeUndefined();
    return (await embeddingCalls()) - before;
  };
  const seen: Array<{ text: string; victim: number; prober: number; victimAgain: number }> = [];
  for (const text of texts(2626, 12)) {
    seen.push({ text: text.slice(0, 40), victim: await search(victim, text), prober: await search(prober, text), victimAgain: await search(victim, text) });
  }
  // The victim's first search calls the provider, the prober's own search does too (a miss), the victim's repeat does not.
  expect(seen).toEqual(seen.map((s) => ({ ...s, victim: 1, prober: 1, victimAgain: 0 })));
}, 120_000);

// Requests without a token may introspect (Ruru loads the schema) and nothing
// else: any operation whose selection reaches data is answered "authentication
// required" (401, code UNAUTHENTICATED) before it runs, never the database's
// "permission denied for table documents". Tested as a class: generated
// documents (root fields, aliases, inline and named fragments, several
// operations with an operationName, queries and mutations) against the rule
// "the chosen operation selects a field other than __schema, __type, __typename".
import { getIntrospectionQuery } from 'graphql';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

interface Item {
  text: string;
  data: boolean;
}
const QUERY_ITEMS: Item[] = [
  { text: '__typename', data: false },
  { text: 'kind: __typename', data: false },
  { text: '__schema { queryType { name } }', data: false },
  { text: '__type(name: "Document") { name }', data: false },
  { text: 'allDocuments { totalCount }', data: true },
  { text: 'n: allDocuments(first: 1) { nodes { rowId } }', data: true },
  { text: 'allDocumentChunks(first: 1) { nodes { content } }', data: true },
  { text: 'query { __typename }', data: true },
];
const MUTATION_ITEMS: Item[] = [
  { text: '__typename', data: false },
  { text: 'createDocument(input: { document: { title: "anonymous" } }) { clientMutationId }', data: true },
];

/** A small deterministic generator (mulberry32), so a failure names a reproducible case. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  document: string;
  operationName?: string;
  /** Whether the document has a mutation (the reporting endpoint has none: such a document is not sent there). */
  mutation: boolean;
  data: boolean;
}

/** One operation of 1–3 root items, each plain, in an inline fragment, in a named fragment or under a directive; fragments go to `fragments`. */
function operation(rnd: () => number, kind: 'query' | 'mutation', name: string, fragments: string[]): { text: string; data: boolean } {
  const pool = kind === 'query' ? QUERY_ITEMS : MUTATION_ITEMS;
  const type = kind === 'query' ? 'Query' : 'Mutation';
  const count = 1 + Math.floor(rnd() * 3);
  let data = false;
  const selections: string[] = [];
  for (let i = 0; i < count; i++) {
    const item = pool[Math.floor(rnd() * pool.length)]!;
    // A field under @skip/@include is a selection all the same: the rule is about what is asked for.
    data ||= item.data;
    const wrap = Math.floor(rnd() * 4);
    if (wrap === 0) selections.push(item.text);
    else if (wrap === 1) selections.push(`... on ${type} { ${item.text} }`);
    else if (wrap === 2) {
      const fragment = `F${fragments.length}`;
      fragments.push(`fragment ${fragment} on ${type} { ${item.text} }`);
      selections.push(`...${fragment}`);
    } else selections.push(`... @include(if: true) { ${item.text} }`);
  }
  return { text: `${kind} ${name} { ${selections.join(' ')} }`, data };
}

function cases(count: number, seed: number): Case[] {
  const rnd = random(seed);
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const fragments: string[] = [];
    const mutation = rnd() < 0.25;
    const chosen = operation(rnd, mutation ? 'mutation' : 'query', 'Chosen', fragments);
    // Half the documents carry another operation too: only the chosen one counts.
    const otherKind = rnd() < 0.5 ? 'query' : 'mutation';
    const other = rnd() < 0.5 ? operation(rnd, otherKind, 'Other', fragments) : undefined;
    const parts = [chosen.text, ...(other ? [other.text] : []), ...fragments];
    if (rnd() < 0.5) parts.reverse();
    out.push({
      document: parts.join('\n'),
      ...(other ? { operationName: 'Chosen' } : {}),
      mutation: mutation || (other !== undefined && otherKind === 'mutation'),
      data: chosen.data,
    });
  }
  return out;
}

async function post(path: string, body: object, token?: string) {
  const res = await fetch(`${h.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    authenticate: res.headers.get('www-authenticate'),
    body: (await res.json()) as { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> },
  };
}

test('generated operations: anonymous ones that select data get 401 UNAUTHENTICATED; introspection passes; tokens are never asked for', async () => {
  const failures: string[] = [];
  const all = cases(160, 20261203);
  expect(all.filter((c) => c.data).length).toBeGreaterThan(40);
  expect(all.filter((c) => !c.data).length).toBeGreaterThan(20);
  const token = h.token('sheratan_app', 'authreq', 'alice');
  for (const c of all) {
    const body = { query: c.document, ...(c.operationName ? { operationName: c.operationName } : {}) };
    const paths = c.mutation ? ['/graphql'] : ['/graphql', '/reporting/graphql'];
    for (const path of paths) {
      const anonymous = await post(path, body);
      const code = anonymous.body.errors?.[0]?.extensions?.code;
      const ok = c.data
        ? anonymous.status === 401 && code === 'UNAUTHENTICATED' && anonymous.body.data === undefined && /^Bearer/.test(anonymous.authenticate ?? '')
        : anonymous.status === 200 && anonymous.body.errors === undefined && anonymous.body.data !== undefined;
      if (!ok)
        failures.push(`${path} anonymous ${JSON.stringify(body)} (data: ${c.data}) → ${anonymous.status} ${JSON.stringify(anonymous.body.errors ?? null)}`);
    }
    const signed = await post('/graphql', body, token);
    if (signed.body.errors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED') || signed.status === 401) {
      failures.push(`with a token ${JSON.stringify(body)} → ${signed.status} ${JSON.stringify(signed.body.errors)}`);
    }
  }
  expect(failures).toEqual([]);
}, 180_000);

test('the refusal comes before anything runs: an anonymous mutation stores nothing, and says what to do', async () => {
  const owner = await h.owner();
  const count = async (): Promise<number> => Number((await owner.query('select count(*) from sheratan.documents')).rows[0].count);
  const before = await count();
  const res = await post('/graphql', { query: 'mutation { createDocument(input: { document: { title: "anonymous write" } }) { document { rowId } } }' });
  expect(res.status).toBe(401);
  expect(res.body).toEqual({
    errors: [
      {
        message: 'authentication required: send "Authorization: Bearer <token>" (only introspection is open without a token)',
        // Refused before validation (no Authorization header at all): grafserv's refusals carry their status, as the limits' do.
        extensions: { code: 'UNAUTHENTICATED', statusCode: 401 },
      },
    ],
  });
  expect(res.body.errors![0]!.message).not.toMatch(/permission denied/);
  expect(await count()).toBe(before);
});

test('GET queries (graphqlOverGET) are refused the same way', async () => {
  const res = await fetch(`${h.url}/graphql?query=${encodeURIComponent('{ allDocuments { totalCount } }')}`, { headers: { accept: 'application/json' } });
  expect(res.status).toBe(401);
  expect(((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code).toBe('UNAUTHENTICATED');
});

test('Ruru loads anonymously in development: its page and the standard introspection query', async () => {
  const page = await fetch(`${h.url}/graphiql`, { headers: { accept: 'text/html' } });
  expect(page.status).toBe(200);
  const res = await post('/graphql', { query: getIntrospectionQuery() });
  expect(res.status).toBe(200);
  expect(res.body.errors).toBeUndefined();
  expect((res.body.data as { __schema: { queryType: { name: string } } }).__schema.queryType.name).toBe('Query');
});

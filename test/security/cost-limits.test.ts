// Operation limits that hold whatever the arguments: alias floods refused
// before validation, caps read from variables' defaults too, connections that
// must say how many rows, offsets, nested fan-out, estimated cost, logged
// search text; and introspection that works (graphql's own query) where it is on.
import { buildClientSchema, getIntrospectionQuery, type IntrospectionQuery } from 'graphql';
import { startHarness, type Harness } from '../support/harness.ts';
import { randomUnit, rng } from '../support/embeddings.ts';

let h: Harness;
const e = randomUnit(384, rng(5));
beforeAll(async () => {
  h = await startHarness();
  const chunks = Array.from({ length: 3 }, (_, i) => ({ content: `c${i}`, embedding: randomUnit(384, rng(10 + i)) }));
  for (const title of ['one', 'two']) {
    const res = await h.graphql('mutation ($c: [ChunkInput]!, $t: String!) { ingestDocument(input: { title: $t, chunks: $c }) { clientMutationId } }', {
      variables: { c: chunks, t: title },
    });
    expect(res.body.errors).toBeUndefined();
  }
});
afterAll(() => h.stop());

const searchLogs = async (): Promise<number> => (await (await h.owner()).query('select count(*)::int as n from sheratan.search_logs')).rows[0].n;
const refusal = (res: Awaited<ReturnType<Harness['graphql']>>) => ({
  message: res.body.errors?.[0]?.message,
  code: res.body.errors?.[0]?.extensions?.code,
  data: res.body.data ?? null,
});

test('3,000 aliases without a token are refused in milliseconds, naming the limit, while /healthz keeps answering', async () => {
  // Within MAX_ANONYMOUS_BODY_BYTES (64 KiB), so that the alias count, not the body size, refuses it.
  const query = `{ ${Array.from({ length: 3000 }, (_, i) => `a${i}: __typename`).join(' ')} }`;
  const health = (async () => {
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      await fetch(`${h.url}/healthz`);
      times.push(performance.now() - started);
    }
    return Math.max(...times);
  })();
  const started = performance.now();
  const res = await h.graphql(query, { token: null });
  const took = performance.now() - started;
  expect(res.status).toBe(400);
  expect(refusal(res)).toMatchObject({ message: 'the operation has more than 50 aliased fields (MAX_QUERY_ALIASES)' });
  // How long it took is printed, not judged here: npm run bench:hostile measures refusals and /healthz under attack.
  console.log(`3,000 aliases refused in ${took.toFixed(1)} ms; /healthz meanwhile at worst ${(await health).toFixed(1)} ms`);
});

test('fields (fragments counted where spread), directives, variable definitions and fragments past their limits are refused before validation, each naming its limit', async () => {
  // A fragment of 100 fields: spread 10 times it is exactly MAX_QUERY_FIELDS (1000) and runs; 11 times is one spread too many.
  const hundred = `fragment F on Query { ${Array.from({ length: 100 }, () => '__typename').join(' ')} }`;
  const spread = (n: number): string => `{ ${Array.from({ length: n }, () => '...F').join(' ')} } ${hundred}`;
  expect((await h.graphql(spread(10))).body.errors).toBeUndefined();
  const fields = await h.graphql(spread(11));
  expect(fields.status).toBe(400);
  expect(refusal(fields)).toEqual({
    message: 'the operation has more than 1000 fields, counting fragments where they are spread (MAX_QUERY_FIELDS)',
    code: 'TOO_MANY_FIELDS',
    data: null,
  });
  // 101 of each, where 100 is the limit; none of these documents would pass validation's own checks as cheaply.
  const directives = await h.graphql(`{ ${Array.from({ length: 101 }, () => '__typename @include(if: true)').join(' ')} }`);
  expect(refusal(directives)).toEqual({
    message: 'the GraphQL document has more than 100 directives (MAX_QUERY_DIRECTIVES)',
    code: 'TOO_MANY_DIRECTIVES',
    data: null,
  });
  const variables = await h.graphql(`query (${Array.from({ length: 101 }, (_, i) => `$v${i}: Int`).join(', ')}) { __typename }`);
  expect(refusal(variables)).toEqual({
    message: 'the GraphQL document defines more than 100 variables (MAX_QUERY_VARIABLES)',
    code: 'TOO_MANY_VARIABLES',
    data: null,
  });
  const fragments = await h.graphql(`{ ${Array.from({ length: 100 }, () => '...T').join(' ')} } fragment T on Query { __typename }`);
  expect(refusal(fragments)).toEqual({
    message: 'the GraphQL document has more than 100 fragment definitions and spreads (MAX_QUERY_FRAGMENTS)',
    code: 'TOO_MANY_FRAGMENTS',
    data: null,
  });
  for (const res of [directives, variables, fragments]) expect(res.status).toBe(400);
});

test('a variable default cannot lift first above MAX_SEARCH_RESULTS or MAX_PAGE_SIZE', async () => {
  const search = await h.graphql('query ($q: Vector!, $n: Int = 300) { searchDocumentChunks(embedding: $q, first: $n) { distance } }', { variables: { q: e } });
  expect(refusal(search)).toEqual({
    message: 'searchDocumentChunks(first: 300) is above the limit of 100 (MAX_SEARCH_RESULTS)',
    code: 'PAGE_TOO_LARGE',
    data: null,
  });
  const page = await h.graphql('query ($n: Int = 5000) { allDocuments(first: $n) { nodes { rowId } } }');
  expect(refusal(page)).toMatchObject({ message: 'allDocuments(first: 5000) is above the limit of 1000 (MAX_PAGE_SIZE)', code: 'PAGE_TOO_LARGE' });
  // A variable sent overrides its default, and is checked the same way.
  const sent = await h.graphql('query ($n: Int = 5) { allDocuments(first: $n) { nodes { rowId } } }', { variables: { n: 1001 } });
  expect(refusal(sent).code).toBe('PAGE_TOO_LARGE');
  const fine = await h.graphql('query ($n: Int = 5) { allDocuments(first: $n) { nodes { rowId } } }');
  expect(fine.body.errors).toBeUndefined();
});

test('a connection returns rows only when asked how many (first or last); counts and aggregates need neither', async () => {
  const whole = await h.graphql('{ allDocumentChunks { nodes { rowId embedding } } }');
  expect(refusal(whole)).toMatchObject({ message: 'allDocumentChunks needs first or last (at most 1000) to return nodes', code: 'PAGE_SIZE_REQUIRED' });
  const nested = await h.graphql('{ allDocuments(first: 2) { nodes { chunks { edges { node { rowId } } } } } }');
  expect(refusal(nested)).toMatchObject({ message: 'chunks needs first or last (at most 1000) to return edges' });
  const viaFragment = await h.graphql('{ allDocuments { ...F } } fragment F on DocumentConnection { nodes { rowId } }');
  expect(refusal(viaFragment).code).toBe('PAGE_SIZE_REQUIRED');
  const counted = await h.graphql<{ allDocuments: { totalCount: number } }>('{ allDocuments { totalCount aggregates { distinctCount { rowId } } } }');
  expect(counted.body.errors).toBeUndefined();
  expect(counted.body.data!.allDocuments.totalCount).toBe(2);
  // The same rules hold on the read-only endpoint.
  const reporting = await h.graphql('{ allDocuments { nodes { rowId } } }', { path: '/reporting/graphql', token: h.token('sheratan_readonly') });
  expect(refusal(reporting).code).toBe('PAGE_SIZE_REQUIRED');
});

test('offset is capped (MAX_OFFSET)', async () => {
  const res = await h.graphql('{ allDocuments(first: 1, offset: 10001) { nodes { rowId } } }');
  expect(refusal(res)).toMatchObject({ message: 'allDocuments(offset: 10001) is above the limit of 10000 (MAX_OFFSET)', code: 'OFFSET_TOO_LARGE' });
  const search = await h.graphql('query ($q: Vector!, $o: Int = 20000) { searchDocumentChunks(embedding: $q, offset: $o) { distance } }', {
    variables: { q: e },
  });
  expect(refusal(search).code).toBe('OFFSET_TOO_LARGE');
});

test('nested fan-out of searches is refused before any runs, on both endpoints, and logs nothing', async () => {
  const before = await searchLogs();
  const query = '{ allDocumentChunks(first: 30) { nodes { similarChunks(first: 100) { chunk { similarChunks(first: 100) { similarity } } } } } }';
  for (const [path, token] of [
    ['/graphql', h.token()],
    ['/reporting/graphql', h.token('sheratan_readonly')],
  ] as const) {
    const res = await h.graphql(query, { path, token });
    expect(refusal(res)).toEqual({
      message: 'the operation would run 3030 searches, above the limit of 20 (MAX_SEARCHES_PER_REQUEST)',
      code: 'TOO_MANY_SEARCHES',
      data: null,
    });
  }
  expect(await searchLogs()).toBe(before);
  // A modest one runs: similarChunks for each of 2 chunks = 2 searches, 2 log rows.
  const small = await h.graphql(
    '{ allDocumentChunks(first: 2) { nodes { similarChunks(first: 2) { similarity } } } documentByRowId(rowId: "00000000-0000-0000-0000-000000000000") { title } }',
  );
  expect(small.body.errors).toBeUndefined();
  expect(await searchLogs()).toBe(before + 2);
});

test('an operation whose estimated cost multiplies past MAX_QUERY_COST is refused with the figure', async () => {
  const res = await h.graphql('{ allDocuments(first: 1000) { nodes { title chunks(first: 100) { nodes { content embedding } } } } }');
  // 1 (allDocuments) + 1 (nodes) + 1000 × (title + chunks + nodes) + 1000 × 100 × (content + embedding)
  expect(refusal(res)).toEqual({
    message: "the operation's estimated cost is 203002, above the limit of 50000 (MAX_QUERY_COST)",
    code: 'QUERY_TOO_COSTLY',
    data: null,
  });
  const fine = await h.graphql('{ allDocuments(first: 100) { nodes { title chunks(first: 10) { nodes { content } } } } }');
  expect(fine.body.errors).toBeUndefined();
});

test('a 5 MB queryText is refused (MAX_QUERY_TEXT_LENGTH) and nothing is logged, even for a read-only token', async () => {
  const before = await searchLogs();
  const res = await h.graphql('query ($q: Vector!, $t: String) { searchDocumentChunks(embedding: $q, queryText: $t) { distance } }', {
    variables: { q: e, t: 'x'.repeat(5_000_000) },
    token: h.token('sheratan_readonly'),
  });
  expect(refusal(res)).toMatchObject({
    message: 'searchDocumentChunks(queryText) has 5000000 characters, above the limit of 2000 (MAX_QUERY_TEXT_LENGTH)',
    code: 'QUERY_TEXT_TOO_LONG',
  });
  expect(await searchLogs()).toBe(before);
});

test("graphql's standard introspection query works over HTTP and builds a client schema, while deep data queries stay refused", async () => {
  const res = await h.graphql<IntrospectionQuery>(
    getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, inputValueDeprecation: true }),
    { token: null },
  );
  expect(res.body.errors).toBeUndefined();
  const schema = buildClientSchema(res.body.data!);
  expect(Object.keys(schema.getQueryType()!.getFields())).toEqual(expect.arrayContaining(['searchDocumentChunks', 'allDocuments']));
  const deep = await h.graphql(
    // 15 levels, over the default MAX_QUERY_DEPTH of 12.
    '{ allDocumentChunks(first: 1) { nodes { document { chunks(first: 1) { nodes { document { chunks(first: 1) { nodes { document { chunks(first: 1) { nodes { document { chunks(first: 1) { nodes { rowId } } } } } } } } } } } } } } }',
  );
  expect(deep.body.errors?.[0]?.message).toMatch(/depth/i);
});

test('with introspection off, validation errors suggest no field names', async () => {
  const prod = await startHarness({ NODE_ENV: 'production' });
  try {
    const res = await prod.graphql('{ allDocument { totalCount } }');
    expect(res.body.errors?.[0]?.message).toBe('Cannot query field "allDocument" on type "Query".');
    const dev = await h.graphql('{ allDocument { totalCount } }');
    expect(dev.body.errors?.[0]?.message).toMatch(/Did you mean "allDocuments"/);
  } finally {
    await prod.stop();
  }
});

// Request limits: depth, page size, fields, body size, malformed JSON, introspection.
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ MAX_QUERY_DEPTH: '4', MAX_PAGE_SIZE: '50', MAX_QUERY_FIELDS: '10', MAX_BODY_BYTES: '2048' });
});
afterAll(() => h.stop());

test('a query deeper than MAX_QUERY_DEPTH is rejected', async () => {
  const res = await h.graphql('{ allDocuments(first: 1) { nodes { chunks(first: 1) { nodes { document { title } } } } } }');
  expect(res.status).toBe(400);
  expect(res.body.errors?.[0]?.message).toMatch(/depth/i);
});

test('first above the cap is rejected naming the cap, as a literal or a variable', async () => {
  const literal = await h.graphql('{ allDocuments(first: 51) { totalCount } }');
  expect(literal.body.errors?.[0]?.message).toBe('allDocuments(first: 51) is above the limit of 50 (MAX_PAGE_SIZE)');
  const variable = await h.graphql('query ($n: Int) { allDocuments(last: $n) { totalCount } }', { variables: { n: 1000 } });
  expect(variable.body.errors?.[0]?.message).toMatch(/above the limit of 50 \(MAX_PAGE_SIZE\)/);
  const ok = await h.graphql('{ allDocuments(first: 50) { totalCount } }');
  expect(ok.body.errors).toBeUndefined();
});

test('MAX_QUERY_FIELDS as set: 10 fields pass, 11 are refused naming it, and a fragment counts at every spread', async () => {
  const fields = (n: number): string => Array.from({ length: n }, () => '__typename').join(' ');
  expect((await h.graphql(`{ ${fields(10)} }`)).body).toEqual({ data: { __typename: 'Query' } });
  const refusal = {
    errors: [
      {
        message: expect.stringMatching(/^(the operation|'Wide') has more than 10 fields, counting fragments where they are spread \(MAX_QUERY_FIELDS\)$/),
        extensions: { code: 'TOO_MANY_FIELDS' },
      },
    ],
  };
  expect((await h.graphql(`{ ${fields(11)} }`)).body).toMatchObject(refusal);
  // Six fields written once, spread twice: twelve.
  const spread = await h.graphql(`query Wide { ...Six ...Six }\nfragment Six on Query { ${fields(6)} }`);
  expect(spread.body).toMatchObject(refusal);
  expect(spread.body.errors?.[0]?.message).toMatch(/^'Wide' has more than 10 fields/);
  expect((await h.graphql(`{ ...Five ...Five }\nfragment Five on Query { ${fields(5)} }`)).body).toEqual({ data: { __typename: 'Query' } });
});

test('an oversized body gets 413 and malformed JSON gets 400', async () => {
  const big = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ __typename } # ${'x'.repeat(4096)}` }),
  });
  expect(big.status).toBe(413);
  const bad = await fetch(`${h.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
  expect(bad.status).toBe(400);
});

test('introspection is off in production unless GRAPHQL_INTROSPECTION=true', async () => {
  const prod = await startHarness({ NODE_ENV: 'production' });
  try {
    const res = await prod.graphql('{ __schema { queryType { name } } }');
    expect(res.body.errors?.[0]?.message).toMatch(/introspection/i);
    expect((await fetch(`${prod.url}/graphiql`, { headers: { accept: 'text/html' } })).status).toBe(404);
  } finally {
    await prod.stop();
  }
});

// Common GraphQL clients with their defaults: urql sends short queries as GET
// (within the URL limit), long ones and mutations as POST, and all of them
// work on both endpoints with the same token rules and limits (a mutation over
// GET is refused, 405); the README's graphql-request, urql and Apollo examples run.
import { Client, fetchExchange, gql } from '@urql/core';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

/** urql's own fetch, observed: which method each request used. */
function client(path: string, token: string | null): { urql: Client; methods: string[] } {
  const methods: string[] = [];
  const urql = new Client({
    url: `${h.url}${path}`,
    exchanges: [fetchExchange],
    fetchOptions: token ? { headers: { authorization: `Bearer ${token}` } } : {},
    fetch: (input, init) => {
      methods.push(init?.method ?? 'GET');
      return fetch(input, init);
    },
  });
  return { urql, methods };
}

test('short queries as GET, mutations and long queries as POST: all answer', async () => {
  const { urql, methods } = client('/graphql', h.token());
  const created = await urql
    .mutation(
      gql`
        mutation {
          createDocument(input: { document: { title: "via urql", source: "urql" } }) {
            document {
              rowId
            }
          }
        }
      `,
      {},
    )
    .toPromise();
  expect(created.error).toBeUndefined();
  const read = await urql
    .query(
      gql`
        query Docs {
          allDocuments(first: 5, condition: { source: "urql" }) {
            totalCount
            nodes {
              title
            }
          }
        }
      `,
      {},
    )
    .toPromise();
  expect(read.error).toBeUndefined();
  expect(read.data).toEqual({ allDocuments: { totalCount: 1, nodes: [{ title: 'via urql' }] } });
  const embedding = Array.from({ length: 384 }, (_, i) => Math.sin(i + 1));
  const search = await urql
    .query(
      gql`
        query ($e: Vector!) {
          searchDocumentChunks(embedding: $e, first: 3) {
            distance
          }
        }
      `,
      { e: embedding },
    )
    .toPromise();
  expect(search.error).toBeUndefined();
  expect(methods).toEqual(['POST', 'GET', 'POST']);
});

test('GET carries the same auth and limits; the reporting endpoint answers GET too', async () => {
  const anonymous = client('/graphql', null);
  const denied = await anonymous.urql
    .query(
      gql`
        {
          allDocuments {
            totalCount
          }
        }
      `,
      {},
    )
    .toPromise();
  expect(anonymous.methods).toEqual(['GET']);
  expect(denied.error?.message).toMatch(/authentication required/);
  expect(denied.error?.response?.status).toBe(401);
  const bad = client('/graphql', 'not.a.jwt');
  const refused = await bad.urql
    .query(
      gql`
        {
          allDocuments {
            totalCount
          }
        }
      `,
      {},
    )
    .toPromise();
  expect(refused.error?.response?.status).toBe(401);
  const capped = await client('/graphql', h.token())
    .urql.query(
      gql`
        {
          allDocuments(first: 5000) {
            nodes {
              rowId
            }
          }
        }
      `,
      {},
    )
    .toPromise();
  expect(capped.error?.message).toMatch(/above the limit of 1000 \(MAX_PAGE_SIZE\)/);
  // The reporting endpoint counts the token's tenant only: a document of
  // another tenant (added here) never counts, one of this tenant does.
  const create = (title: string, tenant: string) =>
    h.graphql(`mutation ($t: String!) { createDocument(input: { document: { title: $t } }) { document { rowId } } }`, {
      variables: { t: title },
      token: h.token('sheratan_app', tenant),
    });
  expect((await create('this tenant', 'acme')).body.errors).toBeUndefined();
  expect((await create("another tenant's", 'urql-other')).body.errors).toBeUndefined();
  const owner = await h.owner();
  const acme = (await owner.query("select count(*)::int as n from sheratan.documents where tenant = 'acme'")).rows[0].n as number;
  const all = (await owner.query('select count(*)::int as n from sheratan.documents')).rows[0].n as number;
  expect(acme).toBeGreaterThan(0);
  expect(all).toBeGreaterThan(acme);
  const reporting = client('/reporting/graphql', h.token('sheratan_readonly'));
  const counted = await reporting.urql
    .query(
      gql`
        {
          allDocuments {
            totalCount
          }
        }
      `,
      {},
    )
    .toPromise();
  expect(reporting.methods).toEqual(['GET']);
  expect(counted.data).toEqual({ allDocuments: { totalCount: acme } });
});

test('a mutation sent as GET is refused and changes nothing', async () => {
  const before = (await h.graphql<{ allDocuments: { totalCount: number } }>('{ allDocuments { totalCount } }')).body.data!.allDocuments.totalCount;
  const url = new URL(`${h.url}/graphql`);
  url.searchParams.set('query', 'mutation { createDocument(input: { document: { title: "over GET" } }) { clientMutationId } }');
  const res = await fetch(url, { headers: { authorization: `Bearer ${h.token()}`, accept: 'application/json' } });
  expect(res.status).toBe(405);
  expect(((await res.json()) as { errors: Array<{ message: string }> }).errors[0]!.message).toBe('Only queries may take place over non-POST requests.');
  expect((await h.graphql<{ allDocuments: { totalCount: number } }>('{ allDocuments { totalCount } }')).body.data!.allDocuments.totalCount).toBe(before);
});

test("the README's client section: graphql-request, urql and Apollo Client run its search", async () => {
  const { GraphQLClient, gql: gqlRequest } = await import('graphql-request');
  const { ApolloClient, HttpLink, InMemoryCache } = await import('@apollo/client');
  const TOKEN = h.token();
  const embedding = Array.from({ length: 384 }, (_, i) => Math.cos(i + 1));
  const chunks = [{ content: 'a chunk to find', embedding }];
  expect(
    (
      await h.graphql('mutation ($c: [ChunkInput]!) { ingestDocument(input: { title: "readme", chunks: $c }) { clientMutationId } }', {
        variables: { c: chunks },
      })
    ).body.errors,
  ).toBeUndefined();
  const url = `${h.url}/graphql`;

  const client = new GraphQLClient(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  const SEARCH = gqlRequest`query Search($q: Vector!) { searchDocumentChunks(embedding: $q, first: 5) { similarity chunk { content document { title } } } }`;
  const viaRequest = await client.request<{ searchDocumentChunks: Array<{ similarity: number; chunk: { content: string } }> }>(SEARCH, { q: embedding });

  const urql = new Client({ url, exchanges: [fetchExchange], fetchOptions: { headers: { authorization: `Bearer ${TOKEN}` } } });
  const viaUrql = await urql.query(SEARCH, { q: embedding }).toPromise();

  const apollo = new ApolloClient({ link: new HttpLink({ uri: url, headers: { authorization: `Bearer ${TOKEN}` } }), cache: new InMemoryCache() });
  const viaApollo = await apollo.query<{ searchDocumentChunks: Array<{ similarity: number; chunk: { content: string } }> }>({
    query: gql(SEARCH),
    variables: { q: embedding },
  });

  for (const matches of [viaRequest.searchDocumentChunks, viaUrql.data!.searchDocumentChunks, viaApollo.data!.searchDocumentChunks] as Array<
    Array<{ similarity: number; chunk: { content: string } }>
  >) {
    expect(matches[0]!.chunk.content).toBe('a chunk to find');
    expect(matches[0]!.similarity).toBeCloseTo(1, 5);
  }
});

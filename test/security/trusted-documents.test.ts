// Trusted documents (issue 27 item 2), both backends: `npm run
// trusted-documents` builds the manifest from the apps' .graphql files; a
// production gateway with TRUSTED_DOCUMENTS runs those operations by hash (or
// as their exact text) and refuses anything else by code BEFORE parsing it:
// unlisted documents of every kind (valid, whitespace-changed, invalid syntax,
// huge, introspection) all get TRUSTED_DOCUMENT_REQUIRED, never a parse or
// validation error; unknown hashes PERSISTED_QUERY_NOT_FOUND; over HTTP and
// the socket alike. In development the hashes resolve and anything else runs
// too (Ruru, introspection). Reporting (/reporting/graphql) is not bound.
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { parse } from 'graphql';
import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { getOperationName } from '@apollo/client/utilities/internal';
import { startHarness, type Harness } from '../support/harness.ts';
import { runCli } from '../support/processes.ts';
import { applyCurrentMigration } from '../support/current-migration.ts';
import { buildTrustedDocuments, checkTrustedDocuments, documentHash, type TrustedDocuments } from '../../src/graphql/trusted-documents.ts';

const APP = `
fragment Titles on Document { rowId title }
query AllTitles { allDocuments(first: 5) { nodes { ...Titles } } }
mutation AddDocument($title: String!) { createDocument(input: { document: { title: $title, content: "" } }) { document { ...Titles } } }
subscription Changes { documentChanged { operation document { ...Titles } } }
`;

let dir: string;
let manifestFile: string;
let manifest: TrustedDocuments;
const hashOf = (name: string): string => Object.entries(manifest).find(([, text]) => new RegExp(`^\\w+ ${name}\\b`).test(text))![0];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sheratan-trusted-'));
  await mkdir(path.join(dir, 'app', 'nested'), { recursive: true });
  await writeFile(path.join(dir, 'app', 'operations.graphql'), APP);
  await writeFile(path.join(dir, 'app', 'nested', 'more.gql'), 'query Count { allDocuments { totalCount } }');
  manifestFile = path.join(dir, 'trusted-documents.json');
  // The command as a user runs it.
  const cli = runCli(['trusted-documents', '--from', dir, '--out', manifestFile], { LOG_LEVEL: 'silent' });
  const exit = await cli.exited;
  expect(cli.output()).toMatch(/wrote 4 trusted documents/);
  expect(exit.code).toBe(0);
  manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as TrustedDocuments;
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the manifest', () => {
  test('one document per named operation, with the fragments it uses; keyed by the SHA-256 of its text', () => {
    expect(Object.keys(manifest)).toHaveLength(4);
    for (const [hash, text] of Object.entries(manifest)) expect(documentHash(text)).toBe(hash);
    expect(manifest[hashOf('AllTitles')]).toMatch(/^query AllTitles[\s\S]*fragment Titles on Document/);
    expect(manifest[hashOf('Count')]).not.toMatch(/fragment/);
    // The same sources give the same manifest (a stable file to commit).
    expect(
      buildTrustedDocuments([
        { file: 'a.graphql', text: APP },
        { file: 'b.graphql', text: 'query Count { allDocuments { totalCount } }' },
      ]),
    ).toEqual(manifest);
  });

  test('what cannot be a manifest is refused by name', () => {
    expect(() => buildTrustedDocuments([{ file: 'x.graphql', text: 'query { a }' }])).toThrow(/x.graphql: every operation needs a name/);
    expect(() => buildTrustedDocuments([{ file: 'x.graphql', text: 'query A { ...Missing }' }])).toThrow(
      /the fragment Missing is used but defined in no .graphql file/,
    );
    expect(() =>
      buildTrustedDocuments([
        { file: 'x.graphql', text: 'query A { a }' },
        { file: 'y.graphql', text: 'query A { b }' },
      ]),
    ).toThrow(/y.graphql: the operation A is also defined in x.graphql/);
    expect(() => buildTrustedDocuments([{ file: 'x.graphql', text: 'query A { ' }])).toThrow(/x.graphql: Syntax Error/);
    expect(() => checkTrustedDocuments({ ['0'.repeat(64)]: 'query A { a }' }, 'm.json')).toThrow(/m.json: 0{64} is not the SHA-256 of its document/);
    expect(() => checkTrustedDocuments([], 'm.json')).toThrow(/a manifest is a JSON object/);
    expect(() => checkTrustedDocuments({}, 'm.json')).toThrow(/holds no document/);
  });
});

type Answer = Awaited<ReturnType<Harness['graphql']>>;
async function post(h: Harness, body: Record<string, unknown>, urlPath = '/graphql', tenant?: string): Promise<Answer> {
  const res = await fetch(`${h.url}${urlPath}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${h.token(undefined, tenant)}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}
const codeOf = (a: Answer): unknown => a.body.errors?.[0]?.extensions?.code;

describe('a production gateway with TRUSTED_DOCUMENTS', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ NODE_ENV: 'production', TRUSTED_DOCUMENTS: manifestFile });
    // The live events' triggers (the socket test) are in the migration in progress.
    await applyCurrentMigration(h);
  }, 120_000);
  afterAll(() => h?.stop());

  test('runs the manifest’s operations by hash (Apollo’s extensions.persistedQuery, documentId) or as their exact text', async () => {
    const added = await post(h, { extensions: { persistedQuery: { version: 1, sha256Hash: hashOf('AddDocument') } }, variables: { title: 'trusted' } });
    expect(added.body.errors).toBeUndefined();
    expect(added.body.data).toMatchObject({ createDocument: { document: { title: 'trusted' } } });
    const titles = await post(h, { documentId: hashOf('AllTitles') });
    expect(titles.body).toEqual({ data: { allDocuments: { nodes: [expect.objectContaining({ title: 'trusted' })] } } });
    expect((await post(h, { query: manifest[hashOf('Count')] })).body).toEqual({ data: { allDocuments: { totalCount: 1 } } });
  });

  test('refuses every document not in the manifest with TRUSTED_DOCUMENT_REQUIRED before parsing it (a generator of documents)', async () => {
    const before = await post(h, { documentId: hashOf('Count') });
    const listed = manifest[hashOf('AllTitles')]!;
    const documents = [
      'query { allDocuments { nodes { content } } }',
      listed.replace('first: 5', 'first: 6'),
      listed + ' ',
      listed.replace(/\n/g, ' '),
      '{ __schema { types { name } } }',
      'query { __typename }',
      '{{{{ this is not GraphQL',
      '',
      'query A '.repeat(10_000),
      '{ a ' + '{ b '.repeat(5000),
      ...Array.from({ length: 20 }, (_, i) => `query Q${i} { allDocuments(first: ${i}) { totalCount } }`),
    ];
    for (const query of documents) {
      const answer = await post(h, { query });
      // A parse or validation error would say "Syntax Error" or name a field: these never got that far.
      expect({ query: query.slice(0, 40), code: codeOf(answer), status: answer.status }).toEqual({
        query: query.slice(0, 40),
        code: 'TRUSTED_DOCUMENT_REQUIRED',
        status: 400,
      });
      expect(answer.body.errors![0]!.message).toMatch(/runs only trusted documents: send the hash/);
    }
    // Nothing ran: no document was added.
    expect((await post(h, { documentId: hashOf('Count') })).body).toEqual(before.body);
  });

  test('an unknown hash is PERSISTED_QUERY_NOT_FOUND (Apollo’s persisted-query link then sends the text, which is refused unless listed)', async () => {
    for (const body of [
      { extensions: { persistedQuery: { version: 1, sha256Hash: documentHash('query Other { a }') } } },
      { documentId: 'not-a-hash' },
      { documentId: '../../etc/passwd' },
      { id: 12345 },
      { documentId: hashOf('Count').toUpperCase(), query: manifest[hashOf('Count')] },
    ]) {
      const answer = await post(h, body);
      expect({ body, code: codeOf(answer), status: answer.status }).toEqual({ body, code: 'PERSISTED_QUERY_NOT_FOUND', status: 400 });
    }
  });

  test('over the socket too: a subscription by hash runs, an unlisted one is refused by code', async () => {
    const client = createClient({
      url: h.url.replace(/^http/, 'ws') + '/graphql',
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${h.token(undefined, 'socket-tenant')}` },
      retryAttempts: 0,
    });
    const refused = await new Promise<unknown>((resolve) => {
      client.subscribe({ query: 'subscription { jobChanged { operation } }' }, { next: () => undefined, error: resolve, complete: () => resolve(null) });
    });
    expect(refused).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'TRUSTED_DOCUMENT_REQUIRED' }) })]);
    const events: unknown[] = [];
    const stop = client.subscribe(
      { query: '', extensions: { persistedQuery: { version: 1, sha256Hash: hashOf('Changes') } } },
      { next: (v) => events.push(v), error: (e) => events.push(e), complete: () => undefined },
    );
    await new Promise((r) => setTimeout(r, 500));
    await h.gateway.gateway.liveEvents.ready();
    // A tenant of its own: the other tests count the default tenant's documents (the order is shuffled).
    await post(h, { documentId: hashOf('AddDocument'), variables: { title: 'over the socket' } }, '/graphql', 'socket-tenant');
    const end = Date.now() + 20_000;
    while (events.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(events[0]).toEqual({ data: { documentChanged: { operation: 'INSERT', document: expect.objectContaining({ title: 'over the socket' }) } } });
    stop();
    await client.dispose();
  }, 60_000);

  test('the README’s Apollo Client example: its persisted-query link sends the manifest’s hash, and the operation runs', async () => {
    const hashByName = Object.fromEntries(Object.entries(manifest).map(([hash, text]) => [/^\w+ (\w+)/.exec(text)![1]!, hash]));
    const link = new PersistedQueryLink({ generateHash: (document) => hashByName[getOperationName(document)!]! }).concat(
      new HttpLink({ uri: `${h.url}/graphql`, headers: { authorization: `Bearer ${h.token()}` } }),
    );
    const apollo = new ApolloClient({ link, cache: new InMemoryCache() });
    const { data } = await apollo.query<{ allDocuments: { totalCount: number } }>({ query: parse(manifest[hashOf('Count')]!), fetchPolicy: 'no-cache' });
    expect(data?.allDocuments.totalCount).toEqual(expect.any(Number));
    // An operation the manifest does not hold: Apollo sends its hash, then (told PERSISTED_QUERY_NOT_FOUND) its text, refused in turn.
    await expect(apollo.query({ query: parse('query Unlisted { allDocuments { totalCount } }'), fetchPolicy: 'no-cache' })).rejects.toThrow();
  });

  test('reporting tools are not bound by the apps’ manifest', async () => {
    const answer = await post(h, { query: '{ allDocuments { totalCount } }' }, '/reporting/graphql');
    expect(answer.body.errors).toBeUndefined();
  });
});

describe('a development gateway with TRUSTED_DOCUMENTS', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ TRUSTED_DOCUMENTS: manifestFile });
  }, 120_000);
  afterAll(() => h?.stop());

  test('hashes resolve, and anything else still runs: Ruru, introspection, a query being written', async () => {
    expect((await post(h, { documentId: hashOf('Count') })).body).toEqual({ data: { allDocuments: { totalCount: 0 } } });
    const introspection = await post(h, { query: '{ __schema { queryType { name } } }' });
    expect(introspection.body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
    expect((await post(h, { query: '{ allDocuments(first: 1) { nodes { content } } }' })).body.errors).toBeUndefined();
    expect(codeOf(await post(h, { documentId: 'f'.repeat(64) }))).toBe('PERSISTED_QUERY_NOT_FOUND');
    const ruru = await fetch(`${h.url}/graphiql`);
    expect(ruru.status).toBe(200);
  });
});

test('a manifest that is not one stops the gateway at start, naming TRUSTED_DOCUMENTS and the file', async () => {
  const bad = path.join(dir, 'bad.json');
  await writeFile(bad, JSON.stringify({ ['a'.repeat(64)]: 'query A { a }' }));
  await expect(startHarness({ TRUSTED_DOCUMENTS: bad })).rejects.toThrow(/TRUSTED_DOCUMENTS \(.*bad.json\): a{64} is not the SHA-256 of its document/);
}, 120_000);

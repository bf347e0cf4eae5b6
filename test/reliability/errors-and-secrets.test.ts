// What errors show and what logs keep: an unexpected database error reaches
// the client as a bare reference, while the log line holds the details under
// the same request id the client got; tokens, the JWT secret and the
// database passwords are never written to the log, whatever the request.
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { setLogLevel } from '../../src/config/log.ts';
import jwt from 'jsonwebtoken';
import { signToken } from '../../src/http/token-signing.ts';
import { parseConfig } from '../../src/config/config.ts';
import { backend, createTestDatabase, migrateTestDatabase } from '../support/backend.ts';
import { freePort, runCli, startGatewayProcess } from '../support/processes.ts';

const SECRET = 'an-unmistakable-jwt-secret-0123456789abcdef';
let h: Harness;
let owner: pg.Client;
let logged = '';
/** Everything written since the harness began starting, never reset (tests reset `logged` to read their own lines). */
let loggedSinceStart = '';
const realWrite = process.stderr.write.bind(process.stderr);

beforeAll(async () => {
  // Captured from the start: the log of starting (migrations) is the test's to read, not the test report's.
  process.stderr.write = ((chunk: string | Uint8Array) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    logged += text;
    loggedSinceStart += text;
    return true;
  }) as typeof process.stderr.write;
  h = await startHarness({ JWT_SECRET: SECRET, LOG_LEVEL: 'debug' });
  owner = await h.owner();
});
afterAll(async () => {
  process.stderr.write = realWrite;
  await h.stop();
});

const post = async (body: unknown, headers: Record<string, string>) => {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, requestId: res.headers.get('x-request-id'), text: await res.text() };
};

test('an unexpected database error is masked for the client and logged with its request id and details', async () => {
  await h.graphql(`mutation { createDocument(input: { document: { title: "t", source: "s" } }) { clientMutationId } }`);
  // Schema drift behind the gateway's back: the SQL it generates now fails.
  await owner.query('alter table sheratan.documents rename column source to source_renamed');
  try {
    logged = '';
    const res = await post(
      { query: '{ allDocuments(first: 10) { nodes { title source } } }' },
      { authorization: `Bearer ${h.token()}`, 'x-request-id': 'req-drift-1' },
    );
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text) as { errors: Array<{ message: string; extensions: { code: string; reference: string } }> };
    expect(body.errors[0]!.message).toMatch(/^An unexpected error occurred \(reference [0-9a-f-]{36}\)$/);
    expect(body.errors[0]!.extensions.code).toBe('INTERNAL_SERVER_ERROR');
    // Nothing of the database's own words reaches the client.
    expect(res.text).not.toMatch(/source_renamed|does not exist|sheratan\.|select |\bat \w+ \(/i);

    const line = logged
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'unexpected error while executing a request');
    expect(line).toMatchObject({ level: 'error', requestId: 'req-drift-1', reference: body.errors[0]!.extensions.reference, sqlstate: '42703' });
    expect(String(line!.error)).toMatch(/column .*source.* does not exist/);
  } finally {
    await owner.query('alter table sheratan.documents rename column source_renamed to source');
  }
  const healed = await h.graphql<{ allDocuments: { nodes: Array<{ source: string }> } }>('{ allDocuments(first: 10) { nodes { source } } }');
  expect(healed.body.data!.allDocuments.nodes[0]!.source).toBe('s');
});

test("errors about the caller's own input keep their message and code", async () => {
  const res = await h.graphql(`mutation { createDocument(input: { document: { title: "" } }) { clientMutationId } }`);
  expect(res.body.errors![0]!.message).toMatch(/violates check constraint/);
  expect(res.body.errors![0]!.extensions!.code).toBe('23514');
});

test('neither tokens nor the JWT secret ever reach the log', async () => {
  logged = '';
  const valid = h.token();
  const forged = signToken('another-secret-that-is-long-enough-0123456789', { role: 'sheratan_app', tenant: 'acme', sub: 'mallory' });
  const expired = jwt.sign({ role: 'sheratan_app', tenant: 'acme', sub: 'old', exp: Math.floor(Date.now() / 1000) - 60 }, SECRET, { algorithm: 'HS256' });
  const requests = [
    post({ query: '{ allDocuments { totalCount } }' }, { authorization: `Bearer ${valid}` }),
    post({ query: '{ allDocuments { totalCount } }' }, { authorization: `Bearer ${forged}` }),
    post({ query: '{ allDocuments { totalCount } }' }, { authorization: `Bearer ${expired}` }),
    post({ query: '{ allDocuments { totalCount } }' }, { authorization: `Bearer ${valid}x` }),
    post({ query: '{ allDocuments { nope } }' }, { authorization: `Bearer ${valid}` }),
    post(
      { query: 'query ($t: String) { hybridSearchDocumentChunks(queryText: $t) { score } }', variables: { t: valid } },
      { authorization: `Bearer ${valid}` },
    ),
    post('not json', { authorization: `Bearer ${valid}` }),
  ];
  const statuses = (await Promise.all(requests)).map((r) => r.status);
  expect(statuses).toEqual([200, 401, 401, 401, 400, 200, 400]);
  // Every request was logged (with its id), yet no credential was.
  expect(logged.split('\n').filter((l) => l.includes('"msg":"request"')).length).toBeGreaterThanOrEqual(7);
  for (const secretText of [SECRET, valid, forged, expired, valid.split('.')[2]!, forged.split('.')[2]!]) {
    expect(logged).not.toContain(secretText);
  }
});

test("the database passwords (the owner's and the authenticator's) never reach the log, from the gateway's start on, at debug level", async () => {
  // A request that fails in the database, and one that succeeds, so that query and error paths have logged too.
  await post({ query: '{ allDocuments { totalCount } }' }, { authorization: `Bearer ${h.token()}` });
  await post({ query: '{ nope }' }, { authorization: `Bearer ${h.token()}` });
  expect(loggedSinceStart).toMatch(/"msg":"request"/);
  const passwords = [new URL(h.ownerUrl).password, new URL(h.gateway.db.authUrl).password];
  for (const password of passwords) {
    // Real passwords (generated per data directory, or the server's), long enough that a match could not be chance.
    expect(password.length).toBeGreaterThanOrEqual(16);
    expect(loggedSinceStart).not.toContain(password);
    expect(loggedSinceStart).not.toContain(decodeURIComponent(password));
  }
});

test('deleting a row that does not exist (or that another tenant owns) says so, unmasked', async () => {
  const res = await h.graphql(`mutation { deleteDocumentByRowId(input: { rowId: "6f1d1c3e-4b7a-4c1e-9a55-0d5d2b8f0e11" }) { clientMutationId } }`);
  expect(res.body.errors![0]!.message).toMatch(/^No values were deleted in collection 'documents'/);
  expect(res.body.errors![0]!.extensions!.code).toBe('NOT_FOUND');
});

test('every line the gateway process writes is one JSON log line, errors included (a mutation sent to the read-only endpoint, a bad cursor, bad JSON)', async () => {
  const database = await createTestDatabase();
  try {
    await migrateTestDatabase(parseConfig({ ...database.env, LOG_LEVEL: 'silent' }));
    setLogLevel('debug'); // the process's log level, which migrating set: this file's other tests read the log (the server run is shuffled)
    const gw = await startGatewayProcess({ ...database.env, JWT_SECRET: SECRET, METRICS_TOKEN: 'scrape-secret', NODE_ENV: 'production', LOG_LEVEL: 'info' });
    const startLines = gw
      .output()
      .split('\n')
      .filter((l) => l.trim()).length;
    try {
      const token = signToken(SECRET, { role: 'sheratan_readonly', tenant: 'acme' });
      const send = (path: string, body: string) =>
        fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body }).then((r) =>
          r.text(),
        );
      await send('/reporting/graphql', JSON.stringify({ query: 'mutation { createDocument(input: { document: { title: "x" } }) { clientMutationId } }' }));
      await send('/graphql', JSON.stringify({ query: '{ allDocuments(first: 1, after: "not-a-cursor") { nodes { rowId } } }' }));
      await send('/graphql', '{"query": ');
      await send('/graphql', JSON.stringify({ query: '{ allDocuments(first: 1) { nodes { rowId } }' }));
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
    const lines = gw
      .output()
      .split('\n')
      .filter((l) => l.trim());
    // Each of the four requests, the refused ones included, is one JSON line
    // of its own (not only the start-up lines); then shutting down, stopped.
    const after = lines.slice(startLines).map((l) => JSON.parse(l) as { msg: string; method?: string; path?: string; status?: number });
    expect(after.filter((l) => l.msg === 'request' && l.method === 'POST').map((l) => [l.path, l.status])).toEqual([
      ['/reporting/graphql', 400],
      ['/graphql', 200],
      ['/graphql', 400],
      ['/graphql', 400],
    ]);
    expect(after.slice(-2).map((l) => l.msg)).toEqual(['shutting down', 'stopped']);
    // graphile-migrate's lines (the embedded gateway migrates at start) carry its name once.
    if (backend === 'embedded') expect(gw.output()).toMatch(/"msg":"graphile-migrate: Running migration '000001-initial-schema\.sql'"/);
    expect(gw.output()).not.toMatch(/graphile-migrate: graphile-migrate/);
    expect(
      lines.filter((l) => {
        try {
          return typeof JSON.parse(l) !== 'object';
        } catch {
          return true;
        }
      }),
    ).toEqual([]);
  } finally {
    await database.drop();
  }
}, 120_000);

test('a production gateway without JWT_SECRET does not start: one line naming it, exit 1, nothing listening', async () => {
  const database = await createTestDatabase();
  try {
    await migrateTestDatabase(parseConfig({ ...database.env, LOG_LEVEL: 'silent' }));
    setLogLevel('debug'); // the process's log level, which migrating set: this file's other tests read the log (the server run is shuffled)
    const port = await freePort();
    const proc = runCli(['start'], {
      ...database.env,
      JWT_SECRET: '',
      METRICS_TOKEN: 'scrape-secret',
      NODE_ENV: 'production',
      PORT: String(port),
      LOG_LEVEL: 'info',
    });
    const exit = await proc.exited;
    expect(exit.code).toBe(1);
    expect(proc.output().trim().split('\n')).toEqual([expect.stringMatching(/^sheratan: JWT_SECRET must be set in production \(NODE_ENV=production\)/)]);
    await expect(fetch(`http://127.0.0.1:${port}/readyz`)).rejects.toThrow();
  } finally {
    await database.drop();
  }
}, 120_000);

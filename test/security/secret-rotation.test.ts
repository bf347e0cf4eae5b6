// Rotating the JWT secret, as README's Security section says to: a new
// JWT_SECRET and a restart, after which every token signed with the old
// secret is refused and the new secret's are accepted; embedded, deleting the
// data directory's generated `jwt-secret` and restarting does the same.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { createTestDatabase, embeddedTest, migrateTestDatabase, type TestDatabase } from '../support/backend.ts';
import { startGatewayProcess } from '../support/processes.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
  await migrateTestDatabase(parseConfig({ ...database.env, LOG_LEVEL: 'silent' }));
});
afterAll(() => database.drop());

const token = (secret: string): string => signToken(secret, { role: 'sheratan_app', tenant: 'rotation', sub: 'someone' });

/** The status and first error message of one GraphQL request with `bearer`. */
async function ask(url: string, bearer: string): Promise<{ status: number; error?: string }> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ query: '{ allDocuments { totalCount } }' }),
  });
  const body = (await res.json()) as { errors?: Array<{ message: string }> };
  return { status: res.status, ...(body.errors ? { error: body.errors[0]!.message } : {}) };
}

/** `npm start` with `env` over this file's database, for the length of `fn`. */
async function withGateway<T>(env: Record<string, string>, fn: (url: string) => Promise<T>): Promise<T> {
  const gw = await startGatewayProcess({ ...database.env, LOG_LEVEL: 'silent', ...env });
  try {
    return await fn(gw.url);
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
}

test('a new JWT_SECRET and a restart: tokens signed with the old secret are refused, the new secret’s accepted', async () => {
  const oldSecret = 'the-old-jwt-secret-of-this-test-0123456789';
  const newSecret = 'the-new-jwt-secret-of-this-test-9876543210';
  const before = await withGateway({ JWT_SECRET: oldSecret }, async (url) => ask(url, token(oldSecret)));
  expect(before).toEqual({ status: 200 });
  const after = await withGateway({ JWT_SECRET: newSecret }, async (url) => ({
    old: await ask(url, token(oldSecret)),
    fresh: await ask(url, token(newSecret)),
  }));
  expect(after.old).toEqual({ status: 401, error: expect.stringMatching(/invalid signature/) });
  expect(after.fresh).toEqual({ status: 200 });
}, 300_000);

embeddedTest('the generated secret is the embedded data directory’s; a server has JWT_SECRET only (the test before)')(
  'embedded: deleting the data directory’s jwt-secret and restarting makes a new secret, and the old tokens are refused',
  async () => {
    const file = path.join(database.env.SHERATAN_DATA_DIR!, 'jwt-secret');
    // No JWT_SECRET: the gateway signs with the data directory's own, generated at its first start.
    const unset = { JWT_SECRET: '' };
    const oldToken = await withGateway(unset, async (url) => {
      const issued = token(readFileSync(file, 'utf8').trim());
      expect(await ask(url, issued)).toEqual({ status: 200 });
      return issued;
    });
    const oldSecret = readFileSync(file, 'utf8').trim();
    rmSync(file);
    await withGateway(unset, async (url) => {
      const newSecret = readFileSync(file, 'utf8').trim();
      expect(newSecret).toMatch(/^[0-9a-f]{64}$/);
      expect(newSecret).not.toBe(oldSecret);
      expect(await ask(url, oldToken)).toEqual({ status: 401, error: expect.stringMatching(/invalid signature/) });
      expect(await ask(url, token(newSecret))).toEqual({ status: 200 });
    });
  },
  300_000,
);

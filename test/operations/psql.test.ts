// psql feels as on any server, on both backends: as the owner `\dt` and
// `\d document_chunks` show the store's tables, and other logins (the
// authenticator, a reporting login) find them after public too. (On the
// embedded engine the owner's search_path was `public` alone: "Did not find
// any relations.")
import { spawnSync } from 'node:child_process';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

function psql(url: string, ...commands: string[]): string {
  const r = spawnSync('psql', [url, '-XAtq', '-v', 'ON_ERROR_STOP=1', ...commands.flatMap((c) => ['-c', c])], { encoding: 'utf8', timeout: 60_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

test("as the owner, \\dt lists the store's tables and \\d document_chunks describes its columns", () => {
  const tables = psql(h.ownerUrl, '\\dt')
    .split('\n')
    .map((line) => line.split('|').slice(0, 2).join('.'));
  expect(tables).toEqual(
    expect.arrayContaining(['sheratan.documents', 'sheratan.document_chunks', 'sheratan.jobs', 'sheratan.audit_logs', 'sheratan.search_logs']),
  );
  const columns = psql(h.ownerUrl, '\\d document_chunks');
  expect(columns).toMatch(/^embedding\|vector\(384\)\|/m);
  expect(columns).toMatch(/^document_id\|uuid\|/m);
  expect(psql(h.ownerUrl, 'show search_path').trim()).toBe('"$user", public, sheratan');
});

test('other logins find the store after public, and a session SET still wins', () => {
  expect(psql(h.gateway.db.authUrl, 'show search_path').trim()).toBe('"$user", public, sheratan');
  expect(psql(h.gateway.db.authUrl, 'set search_path = public', 'show search_path').trim()).toBe('public');
  // As a role with USAGE on the schema (the authenticator itself has none), unqualified names resolve to the store's.
  expect(psql(h.gateway.db.authUrl, 'set role sheratan_readonly', "select to_regclass('documents') = 'sheratan.documents'::regclass").trim()).toBe('t');
});

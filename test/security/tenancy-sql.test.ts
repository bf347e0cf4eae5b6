// Row-level security and grants in SQL, without a gateway: another tenant's
// rows are invisible to each API role, readonly writes nothing, the schema
// keeps RLS on every table and no API role bypasses it, and the audit trail
// is cleaned up only by its owner-only function (tenancy.test.ts has the same
// rules through GraphQL).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type pg from 'pg';
import { projectRoot } from '../../src/config/paths.ts';
import { startDatabase, type TestDb } from '../support/database.ts';

let h: TestDb;
let owner: pg.Client;
beforeAll(async () => {
  h = await startDatabase();
  owner = await h.owner();
});
afterAll(() => h.close());

const asRole = <T>(role: string, tenant: string, fn: (client: pg.Client) => Promise<T>): Promise<T> => h.asRole(role, tenant, fn);

// Each test uses tenants of its own and seeds what it reads: none depends on
// another's rows or on the order they run in.
test.each(['documents', 'document_chunks', 'jobs', 'audit_logs', 'search_logs'])(
  'SQL: %s rows of another tenant are invisible, and anonymous reads nothing',
  async (table) => {
    // A row of each kind for a tenant of this test's own (the document's audit row comes from its trigger).
    const tenant = `seeded-${table}`;
    const doc = await owner.query<{ id: string }>("insert into sheratan.documents (tenant, title) values ($1, 'seed') returning id", [tenant]);
    await owner.query("insert into sheratan.document_chunks (tenant, document_id, chunk_index, content) values ($1, $2, 0, 'seed')", [tenant, doc.rows[0]!.id]);
    await owner.query("insert into sheratan.jobs (tenant, job_type) values ($1, 'seed')", [tenant]);
    await owner.query('insert into sheratan.search_logs (tenant, k, result_count, latency_ms) values ($1, 10, 0, 1)', [tenant]);
    const count = `select count(*)::int as n from sheratan.${table}`;
    expect((await asRole('sheratan_app', tenant, (c) => c.query(count))).rows[0].n).toBeGreaterThan(0);
    const own = await asRole('sheratan_app', 'nobody-here', (c) => c.query(count));
    expect(own.rows[0].n).toBe(0);
    await expect(asRole('sheratan_anonymous', 'acme', (c) => c.query(`select * from sheratan.${table}`))).rejects.toThrow(/permission denied/);
  },
);

test('SQL: readonly cannot insert, update or delete anything', async () => {
  for (const sql of [
    "insert into sheratan.documents (title) values ('x')",
    "update sheratan.documents set title = 'x'",
    'delete from sheratan.documents',
    "insert into sheratan.jobs (job_type) values ('x')",
    'delete from sheratan.audit_logs',
  ]) {
    await expect(asRole('sheratan_readonly', 'acme', (c) => c.query(sql))).rejects.toThrow(/permission denied/);
  }
});

test('schema lint: RLS on every table, no security definer in exposed schemas, no API role bypasses RLS', async () => {
  const noRls = await owner.query(`
    select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'sheratan' and c.relkind in ('r', 'p') and not c.relrowsecurity`);
  expect(noRls.rows).toEqual([]);
  const definers = await owner.query(`
    select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'sheratan' and p.prosecdef`);
  expect(definers.rows).toEqual([]);
  const pinned = await owner.query(`
    select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'sheratan_private' and p.prosecdef and not exists (
       select 1 from unnest(p.proconfig) c where c like 'search_path=%')`);
  expect(pinned.rows).toEqual([]);
  const bypass = await owner.query(`
    select rolname from pg_roles
     where rolname in ('sheratan_authenticator', 'sheratan_app', 'sheratan_readonly', 'sheratan_anonymous')
       and (rolbypassrls or rolsuper)`);
  expect(bypass.rows).toEqual([]);
  const owned = await owner.query(`
    select c.relname from pg_class c join pg_roles r on r.oid = c.relowner
     where r.rolname in ('sheratan_authenticator', 'sheratan_app', 'sheratan_readonly', 'sheratan_anonymous')`);
  expect(owned.rows).toEqual([]);
  const auth = await owner.query("select rolinherit, rolcanlogin from pg_roles where rolname = 'sheratan_authenticator'");
  expect(auth.rows).toEqual([{ rolinherit: false, rolcanlogin: true }]);
});

test('audit retention: the owner-only cleanup deletes old rows and API roles cannot call it', async () => {
  await expect(asRole('sheratan_app', 'acme', (c) => c.query('select sheratan_private.cleanup_audit_logs(90)'))).rejects.toThrow(/permission denied/);
  // In a transaction rolled back after: the old rows of the CLI test below are not in it.
  await h.withRootDb(async (root) => {
    await root.query('select sheratan_private.cleanup_audit_logs(90)');
    await root.query(
      "insert into sheratan.audit_logs (event_type, resource, action, created_at) values ('old.event', 'x/1', 'insert', now() - interval '100 days')",
    );
    await root.query(
      "insert into sheratan.audit_logs (event_type, resource, action, created_at) values ('recent.event', 'x/2', 'insert', now() - interval '89 days')",
    );
    const { rows } = await root.query('select sheratan_private.cleanup_audit_logs(90) as deleted');
    expect(Number(rows[0].deleted)).toBe(1);
    const left = await root.query("select event_type from sheratan.audit_logs where event_type in ('old.event', 'recent.event')");
    expect(left.rows).toEqual([{ event_type: 'recent.event' }]);
  });
});

test('npm run audit:cleanup -- --days 90 prints how many rows it deleted', async () => {
  await owner.query(
    "insert into sheratan.audit_logs (event_type, resource, action, created_at) select 'old.cli', 'x/' || i, 'insert', now() - interval '200 days' from generate_series(1, 3) i",
  );
  const cli = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'audit:cleanup', '--days', '90'], {
    env: { ...process.env, ...h.cliEnv },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(cli.stderr).toBe('');
  expect(cli.stdout.trim()).toBe('deleted 3 audit log row(s) older than 90 days');
  expect(cli.status).toBe(0);
});

// Two stores on one PostgreSQL cluster, side by side (issue 32): one with the
// default role names, one with its own DATABASE_ROLE_PREFIX; each bootstrapped
// (`db:bootstrap`), migrated (`db:migrate`) and serving (`npm start`) as the
// README says, as separate processes. Neither may log in as the other's
// roles, read the other's rows, or change the other's passwords, and the
// prefixed store's roles hold exactly the privileges the default names hold
// in a default store (the committed migrations' literal names are mapped).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  createTestDatabase,
  SUPERUSER_URL,
  serverTest,
  AUTHENTICATOR_PASSWORD,
  SERVER_JWT_SECRET,
  TEST_EMBEDDING_ENV,
  type TestDatabase,
} from '../support/backend.ts';
import { onDatabase, withPgClient } from '../../src/database/connect.ts';
import { COMMITTED_ROLES, roleNames } from '../../src/config/roles.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { asLogin, postOnce, runCliToEnd, startGatewayProcess, type GatewayProcess } from '../support/processes.ts';

const login = asLogin;
const cli = runCliToEnd;

/** Succeeds, or fails showing what the command printed. */
const succeeded = (r: { code: number | null; output: string }): void => expect(`exit ${r.code}\n${r.output}`).toMatch(/^exit 0\n/);

/** The SQLSTATE of what `sql` fails with as `url` (after `setup`), or 'ok'. */
async function outcome(url: string, sql: string, setup?: string): Promise<string> {
  const client = new pg.Client(url);
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    return (err as { code?: string }).code ?? 'connect failed';
  }
  try {
    if (setup) await client.query(setup);
    await client.query(sql);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Every privilege and policy a role holds in a database, with the role's
 * name replaced by its part (app, readonly, …): two stores migrated alike give
 * the same set whatever their prefix.
 */
async function privileges(url: string, prefix: string): Promise<string[]> {
  return withPgClient(url, async (c) => {
    const rows = await c.query<{ line: string }>(
      `with roles as (select oid, rolname from pg_roles where rolname = any ($1))
       select format('%s %s %s %s', r.rolname, kind, obj, priv) as line from (
         select 'relation' as kind, c.oid::regclass::text as obj, a.privilege_type as priv, a.grantee from pg_class c, aclexplode(c.relacl) a
         union all select 'column', c.oid::regclass::text || '.' || att.attname, a.privilege_type, a.grantee
           from pg_attribute att join pg_class c on c.oid = att.attrelid, aclexplode(att.attacl) a
         union all select 'routine', p.oid::regprocedure::text, a.privilege_type, a.grantee from pg_proc p, aclexplode(p.proacl) a
         union all select 'schema', n.nspname, a.privilege_type, a.grantee from pg_namespace n, aclexplode(n.nspacl) a
         union all select 'database', 'current', a.privilege_type, a.grantee from pg_database d, aclexplode(d.datacl) a where d.datname = current_database()
         union all select 'policy', p.polrelid::regclass::text || '.' || p.polname, p.polcmd::text, x from pg_policy p, unnest(p.polroles) x
       ) g join roles r on r.oid = g.grantee
       order by 1`,
      [Object.values(roleNames(prefix))],
    );
    return rows.rows.map((r) => r.line.replace(new RegExp(`^${prefix}_`), '<prefix>_'));
  });
}

let a: TestDatabase | undefined;
let bName: string | undefined;
const prefix = `store_${randomBytes(3).toString('hex')}`;
const b = roleNames(prefix);
const bOwner = `${prefix}_owner`;
const gateways: GatewayProcess[] = [];

afterAll(async () => {
  for (const gw of gateways) {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
  await a?.drop();
  if (SUPERUSER_URL && bName) {
    await withPgClient(SUPERUSER_URL, async (c) => {
      for (const db of [bName!, `${bName}_shadow`]) await c.query(`drop database if exists ${c.escapeIdentifier(db)} with (force)`);
      for (const role of [b.authenticator, b.app, b.readonly, b.anonymous, bOwner]) await c.query(`drop role if exists ${c.escapeIdentifier(role)}`);
    });
  }
});

serverTest('roles are cluster-wide: several stores share a server cluster, not an embedded data directory')(
  'two stores on one cluster: each bootstrapped, migrated and serving; neither can log in as, read, or reset the other',
  async () => {
    // Store A: the default role names (sheratan_*), as every test database.
    a = await createTestDatabase();
    const aMigrate = await cli(['db:migrate'], a.env);
    succeeded(aMigrate);

    // Store B: its own owner, database, roles and secret on the same cluster.
    bName = `sheratan_test_b_${process.pid}_${randomBytes(3).toString('hex')}`;
    const bPassword = `b-auth-${randomBytes(6).toString('hex')}`;
    const bEnv = {
      DATABASE_URL: login(onDatabase(SUPERUSER_URL!, bName), bOwner, `b-owner-${randomBytes(6).toString('hex')}`),
      AUTH_DATABASE_URL: login(onDatabase(SUPERUSER_URL!, bName), b.authenticator, bPassword),
      DATABASE_ROLE_PREFIX: prefix,
      JWT_SECRET: `store-b-jwt-secret-${randomBytes(16).toString('hex')}`,
      ...TEST_EMBEDDING_ENV,
    };
    const boot = await cli(['db:bootstrap', '--no-createdb'], { ...bEnv, ROOT_DATABASE_URL: SUPERUSER_URL! });
    expect(boot.output).toContain('db:bootstrap will:');
    // It says what it will do before it does it.
    expect(boot.output.indexOf('db:bootstrap will:')).toBeLessThan(boot.output.indexOf('✓'));
    expect(boot.output).toContain(`create the roles ${b.authenticator}, ${b.app}, ${b.readonly}, ${b.anonymous}`);
    succeeded(boot);
    const bMigrate = await cli(['db:migrate'], bEnv);
    succeeded(bMigrate);

    // A's authenticator still logs in with A's password: B's bootstrap touched nothing of A's.
    expect(await outcome(a.env.AUTH_DATABASE_URL!, 'select 1')).toBe('ok');

    // A second bootstrap of B with another authenticator password changes nothing and says so.
    const other = login(bEnv.AUTH_DATABASE_URL, b.authenticator, 'another-password-entirely');
    const again = await cli(['db:bootstrap', '--no-createdb'], { ...bEnv, AUTH_DATABASE_URL: other, ROOT_DATABASE_URL: SUPERUSER_URL! });
    expect(again.output).toContain(`! ${b.authenticator} has a password and it is not the one in AUTH_DATABASE_URL; it is unchanged`);
    expect(again.code).toBe(1);
    expect(await outcome(bEnv.AUTH_DATABASE_URL, 'select 1')).toBe('ok');
    expect(await outcome(other, 'select 1')).toBe('28P01');
    // The case: a store bootstrapped with the default names and its own password leaves A's alone.
    const intruder = login(a.env.AUTH_DATABASE_URL!, COMMITTED_ROLES.authenticator, 'a-third-store-password');
    const third = await cli(['db:bootstrap', '--dry-run'], { ...a.env, AUTH_DATABASE_URL: intruder, ROOT_DATABASE_URL: SUPERUSER_URL! });
    expect(third.output).toContain(`leave ${COMMITTED_ROLES.authenticator}'s password as it is: it has one, and it is not the one in AUTH_DATABASE_URL`);
    expect(third.output).toContain('nothing was changed (--dry-run)');
    expect(await outcome(login(a.env.AUTH_DATABASE_URL!, COMMITTED_ROLES.authenticator, AUTHENTICATOR_PASSWORD), 'select 1')).toBe('ok');

    // B's roles hold in B's database exactly what A's hold in A's (the literal names mapped), and the
    // committed names hold nothing there.
    const aSuper = a.superuserUrl!;
    const bSuper = onDatabase(SUPERUSER_URL!, bName);
    const bPrivileges = await privileges(bSuper, prefix);
    expect(bPrivileges.length).toBeGreaterThan(50);
    expect(bPrivileges).toEqual(await privileges(aSuper, 'sheratan'));
    expect(await privileges(bSuper, 'sheratan')).toEqual([]);
    expect(await privileges(aSuper, prefix)).toEqual([]);

    // Both serve, each its own rows.
    const aGw = await startGatewayProcess(a.env);
    gateways.push(aGw);
    const bGw = await startGatewayProcess(bEnv);
    gateways.push(bGw);
    const aToken = signToken(SERVER_JWT_SECRET, { role: COMMITTED_ROLES.app, tenant: 'acme', sub: 'a' });
    const bToken = signToken(bEnv.JWT_SECRET, { role: b.app, tenant: 'acme', sub: 'b' });
    const ingest = 'mutation ($t: String!) { ingestDocument(input: { title: $t, chunks: [{ content: "hello" }] }) { document { rowId } } }';
    const titles = '{ allDocuments(first: 10) { nodes { title } } }';
    expect((await postOnce(aGw.url, aToken, ingest, { t: 'in store A' })).body.errors).toBeUndefined();
    expect((await postOnce(bGw.url, bToken, ingest, { t: 'in store B' })).body.errors).toBeUndefined();
    expect((await postOnce(aGw.url, aToken, titles)).body.data).toEqual({ allDocuments: { nodes: [{ title: 'in store A' }] } });
    expect((await postOnce(bGw.url, bToken, titles)).body.data).toEqual({ allDocuments: { nodes: [{ title: 'in store B' }] } });
    // A token naming the other store's role is refused (each gateway accepts its own roles only).
    expect((await postOnce(aGw.url, signToken(SERVER_JWT_SECRET, { role: b.app, tenant: 'acme' }), titles)).status).toBe(403);
    expect((await postOnce(bGw.url, signToken(bEnv.JWT_SECRET, { role: COMMITTED_ROLES.app, tenant: 'acme' }), titles)).status).toBe(403);

    // Neither authenticator can become the other's roles or read the other's rows in its database.
    const bAuthOnA = login(onDatabase(SUPERUSER_URL!, new URL(a.superuserUrl!).pathname.slice(1)), b.authenticator, bPassword);
    const aAuthOnB = login(bSuper, COMMITTED_ROLES.authenticator, AUTHENTICATOR_PASSWORD);
    for (const [url, own, theirs] of [
      [bAuthOnA, b, COMMITTED_ROLES],
      [aAuthOnB, COMMITTED_ROLES, b],
    ] as const) {
      const settings = "select set_config('jwt.claims.tenant', 'acme', false)";
      expect(await outcome(url, `set role ${theirs.app}`)).toBe('42501');
      expect(await outcome(url, `set role ${theirs.readonly}`)).toBe('42501');
      // Connected (or refused CONNECT), its own role reads nothing there.
      expect(['42501', '28000']).toContain(await outcome(url, 'select title from sheratan.documents', `${settings}; set role ${own.app}`));
      expect(['42501', '28000']).toContain(await outcome(url, 'select title from sheratan.documents'));
    }
    // And neither logs in with the other's password.
    expect(await outcome(login(bSuper, b.authenticator, AUTHENTICATOR_PASSWORD), 'select 1')).toBe('28P01');
    expect(await outcome(login(aSuper, COMMITTED_ROLES.authenticator, bPassword), 'select 1')).toBe('28P01');
  },
  600_000,
);

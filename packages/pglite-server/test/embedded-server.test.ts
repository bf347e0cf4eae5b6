// The embedded engine behaves like a real server for sequential and
// concurrent clients: nothing leaks from one connection to another.
import pg from 'pg';
import { rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataDirInUseError, startEmbedded, type EmbeddedEngine } from '@sheratan/pglite-server';
import { startSupervisedEngine } from './support/supervised-engine.ts';
import { describeEmbedded, tempDataDir } from './support/backend.ts';

describeEmbedded("it tests the embedded engine's own wire-protocol server", 'the embedded wire-protocol server', () => {
  let dataDir: string;
  let engine: EmbeddedEngine;

  beforeAll(async () => {
    dataDir = tempDataDir();
    engine = await startSupervisedEngine(dataDir, { purpose: 'test' });
    const setup = await connect();
    await setup.query(`
      create role tenant_reader nologin;
      create table claims_seen (id serial primary key, who text, tenant text);
      grant insert, select on claims_seen to tenant_reader;
      grant usage on sequence claims_seen_id_seq to tenant_reader;
    `);
    await setup.end();
  });

  afterAll(async () => {
    await engine.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function connect(user?: string, password?: string): Promise<pg.Client> {
    const url = new URL(engine.url(user));
    if (password !== undefined) url.password = password;
    const client = new pg.Client(url.toString());
    await client.connect();
    return client;
  }

  test('two clients may prepare the same statement name one after the other', async () => {
    const a = await connect();
    expect((await a.query({ name: 'same_name', text: 'select 1 as v' })).rows).toEqual([{ v: 1 }]);
    await a.end();
    const b = await connect();
    expect((await b.query({ name: 'same_name', text: 'select 2 as v' })).rows).toEqual([{ v: 2 }]);
    await b.end();
  });

  test('concurrent clients keep their own prepared statements under the same name', async () => {
    const [a, b] = await Promise.all([connect(), connect()]);
    await a.query({ name: 'shared', text: "select 'a' as who" });
    await b.query({ name: 'shared', text: "select 'b' as who" });
    expect((await a.query({ name: 'shared', text: "select 'a' as who" })).rows).toEqual([{ who: 'a' }]);
    expect((await b.query({ name: 'shared', text: "select 'b' as who" })).rows).toEqual([{ who: 'b' }]);
    await Promise.all([a.end(), b.end()]);
  });

  test('a session SET in one client is not visible in the next, nor in a concurrent one', async () => {
    const a = await connect();
    await a.query("set statement_timeout = '4321ms'");
    await a.query('set role tenant_reader');
    const concurrent = await connect();
    expect((await concurrent.query('show statement_timeout')).rows[0].statement_timeout).toBe('0');
    expect((await concurrent.query('select current_user')).rows[0].current_user).toBe('sheratan');
    // …while the first client still has its own settings.
    expect((await a.query('show statement_timeout')).rows[0].statement_timeout).toBe('4321ms');
    expect((await a.query('select current_user')).rows[0].current_user).toBe('tenant_reader');
    await a.end();
    await concurrent.end();
    const next = await connect();
    expect((await next.query('show statement_timeout')).rows[0].statement_timeout).toBe('0');
    expect((await next.query('select current_user')).rows[0].current_user).toBe('sheratan');
    await next.end();
  });

  test('8 concurrent transactions with SET LOCAL role and claim each see only their own', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => connect()));
    const seen = await Promise.all(
      clients.map(async (c, i) => {
        await c.query('begin');
        await c.query("select set_config('role', 'tenant_reader', true), set_config('jwt.claims.tenant', $1, true)", [`t${i}`]);
        await new Promise((r) => setTimeout(r, 5 * (8 - i))); // interleave
        await c.query("insert into claims_seen (who, tenant) values (current_user, current_setting('jwt.claims.tenant'))");
        const row = (await c.query("select current_user as who, current_setting('jwt.claims.tenant') as tenant")).rows[0];
        await c.query('commit');
        const after = (await c.query("select current_user as who, current_setting('jwt.claims.tenant', true) as tenant")).rows[0];
        return { row, after };
      }),
    );
    seen.forEach(({ row, after }, i) => {
      expect(row).toEqual({ who: 'tenant_reader', tenant: `t${i}` });
      expect(after.who).toBe('sheratan');
      expect(after.tenant ?? '').toBe('');
    });
    const owner = await connect();
    const rows = (await owner.query('select who, tenant from claims_seen order by tenant')).rows;
    expect(rows).toEqual(Array.from({ length: 8 }, (_, i) => ({ who: 'tenant_reader', tenant: `t${i}` })));
    await Promise.all([...clients, owner].map((c) => c.end()));
  });

  test('an open transaction is rolled back when its client disconnects', async () => {
    const a = await connect();
    await a.query('begin');
    await a.query("insert into claims_seen (who, tenant) values ('ghost', 'x')");
    await a.end();
    const b = await connect();
    expect((await b.query("select count(*)::int as n from claims_seen where who = 'ghost'")).rows[0].n).toBe(0);
    await b.end();
  });

  test('a result much larger than the socket buffers arrives intact, also to several clients at once', async () => {
    // The engine writes faster than clients read; what waits to be sent must not
    // be overwritten by the engine's next output (it once was: a corrupt stream).
    const sql = 'select i, md5(i::text) || repeat(chr(65 + i % 26), 2000) as v from generate_series(1, 15000) i';
    const clients = await Promise.all([connect(), connect(), connect()]);
    const results = await Promise.all(clients.map((c) => c.query(sql)));
    for (const { rows } of results) {
      expect(rows).toHaveLength(15000);
      const bad = rows.filter((r, k) => r.i !== k + 1 || r.v.length !== 32 + 2000 || r.v[40] !== String.fromCharCode(65 + ((k + 1) % 26)));
      expect(bad).toEqual([]);
    }
    // Each row's checksum part too, for a sample spread over the result.
    const { createHash } = await import('node:crypto');
    for (let k = 0; k < 15000; k += 997)
      expect(results[0]!.rows[k].v.slice(0, 32)).toBe(
        createHash('md5')
          .update(String(k + 1))
          .digest('hex'),
      );
    await Promise.all(clients.map((c) => c.end()));
  }, 60_000);

  test('each login role authenticates with its own password; a role without one, or without LOGIN, cannot log in', async () => {
    await expect(connect(undefined, 'wrong-password')).rejects.toThrow(/password authentication failed for user "sheratan"/);
    // The owner's password opens no other role (it once opened every one).
    await expect(connect('sheratan_authenticator', engine.password)).rejects.toThrow(/password authentication failed for user "sheratan_authenticator"/);
    await expect(connect('nobody', engine.password)).rejects.toThrow(/password authentication failed for user "nobody"/);
    // A LOGIN role with no password set, and a NOLOGIN role with one.
    const owner = await connect();
    await owner.query(
      "create role sheratan_authenticator login noinherit; create role passwordless login; create role cannot_login nologin password 'a-password-of-its-own'; create role scram_login login password 'its-own-secret-1'",
    );
    await owner.query("set password_encryption = 'md5'; create role md5_login login password 'its-own-secret-2'");
    await owner.end();
    await expect(connect('passwordless', '')).rejects.toThrow(/password authentication failed for user "passwordless"/);
    await expect(connect('passwordless', engine.password)).rejects.toThrow(/password authentication failed/);
    await expect(connect('cannot_login', 'a-password-of-its-own')).rejects.toThrow(/role "cannot_login" is not permitted to log in/);
    // Stored passwords (SCRAM, and MD5 as older clusters have them) work, and only the right one.
    await expect(connect('scram_login', 'wrong')).rejects.toThrow(/password authentication failed/);
    for (const [role, password] of [
      ['scram_login', 'its-own-secret-1'],
      ['md5_login', 'its-own-secret-2'],
    ] as const) {
      const c = await connect(role, password);
      expect((await c.query("select session_user as s, current_setting('is_superuser') as su")).rows).toEqual([{ s: role, su: 'off' }]);
      await c.end();
    }
    // The authenticator has its own generated password, in the data directory (0600).
    const auth = await connect('sheratan_authenticator');
    await auth.end();
    expect(engine.passwords.sheratan_authenticator).not.toBe(engine.password);
    expect(statSync(path.join(dataDir, 'authenticator-password')).mode & 0o777).toBe(0o600);
    // So is the owner's, and the data directory is its user's alone (README: "mode 0700").
    expect(statSync(path.join(dataDir, 'password')).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const unknownDb = new pg.Client({ connectionString: engine.url().replace(/\/sheratan$/, '/elsewhere') });
    await expect(unknownDb.connect()).rejects.toThrow(/database "elsewhere" does not exist/);
  });

  test('the shadow database is a separate instance', async () => {
    const shadow = new pg.Client(engine.url(undefined, true));
    await shadow.connect();
    expect((await shadow.query("select to_regclass('public.claims_seen') as t")).rows[0].t).toBeNull();
    await shadow.end();
  });

  // GRANT/REVOKE … ON DATABASE and ALTER DATABASE are answered by the engine itself (it has one database per
  // instance); inside a transaction they must neither hand the backend to another client (whose turn would end
  // the open transaction, losing what it did: the reporting login created in one transaction with its GRANT
  // CONNECT vanished so) nor tell the client it is idle.
  test.each([
    'grant connect on database sheratan to tenant_reader',
    'revoke connect on database sheratan from tenant_reader',
    'GRANT CONNECT, TEMPORARY ON DATABASE "sheratan" TO tenant_reader',
    'alter database sheratan set work_mem = 1024',
  ])('inside a transaction, %s keeps the transaction and the backend: another client waiting meanwhile runs after the commit', async (command) => {
    const table = `kept_${Math.random().toString(36).slice(2, 8)}`;
    const a = await connect();
    const b = await connect();
    await a.query('begin');
    await a.query(`create table ${table} (v int)`);
    // b asks for the backend while a's transaction holds it: it must wait for a's commit.
    const waiting = b.query(`select count(*)::int as n from pg_class where relname = $1`, [table]);
    const reply = await a.query(command);
    expect(reply.command).toMatch(/GRANT|REVOKE|ALTER/);
    expect((await a.query('select count(*)::int as n from pg_class where relname = $1', [table])).rows[0].n).toBe(1);
    await a.query('commit');
    // b ran after the commit: it sees the table, and so does everyone after.
    expect((await waiting).rows[0].n).toBe(1);
    expect((await b.query(`select count(*)::int as n from ${table}`)).rows[0].n).toBe(0);
    await Promise.all([a.end(), b.end()]);
  });

  test.each(['drop database sheratan', 'create database sheratan', 'sheratan dump'])(
    'inside a transaction, %s is refused (25001) and the transaction is kept',
    async (command) => {
      const table = `kept_${Math.random().toString(36).slice(2, 8)}`;
      const a = await connect();
      await a.query('begin');
      await a.query(`create table ${table} (v int)`);
      await expect(a.query(command)).rejects.toMatchObject({ code: '25001', message: expect.stringMatching(/cannot run inside a transaction block/) });
      await a.query('rollback');
      expect((await a.query('select count(*)::int as n from pg_class where relname = $1', [table])).rows[0].n).toBe(0);
      await a.end();
    },
  );

  test('a second engine on the same data directory is refused with a clear message', async () => {
    await expect(startEmbedded(dataDir, { purpose: 'second' })).rejects.toThrow(DataDirInUseError);
    await expect(startEmbedded(dataDir, { purpose: 'second' })).rejects.toThrow(/in use by process \d+ \(test\)/);
  });

  test('a clean shutdown keeps every committed row on disk', async () => {
    const dir = tempDataDir();
    const first = await startSupervisedEngine(dir, { purpose: 'persist' });
    const a = new pg.Client(first.url());
    await a.connect();
    await a.query('create table kept (v text); insert into kept values ($$still here$$)');
    await a.end();
    await first.stop();
    const second = await startSupervisedEngine(dir, { purpose: 'persist' });
    const b = new pg.Client(second.url());
    await b.connect();
    expect((await b.query('select v from kept')).rows).toEqual([{ v: 'still here' }]);
    await b.end();
    await second.stop();
    rmSync(dir, { recursive: true, force: true });
  });
});

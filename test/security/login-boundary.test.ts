// Logins are a boundary (issue 25), tried as a hostile reporting login with
// real clients (psql, pg) on both backends: no SQL, by either protocol, makes
// it another role; it reads no other login's cursors, prepared statements or
// their text, and cannot drop another's statements. A server is a boundary
// by itself; the embedded engine is one by construction (packages/pglite-server/
// login-boundary.ts seals its bootstrap role while such a login holds the
// backend; pg-server.ts keeps cursors and prepared statements per login).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { projectRoot } from '../../src/config/paths.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { backend, embeddedTest, SUPERUSER_URL, tempDataDir } from '../support/backend.ts';
import { freePort, startEngineProcess } from '../support/processes.ts';

let h: Harness;
const A = `boundary_a_${process.pid}`;
const B = `boundary_b_${process.pid}`;
const PASSWORD = 'boundary-password-0123';

const cli = (args: string[]) =>
  spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), ...args], {
    env: { ...process.env, ...h.cliEnv, ...(SUPERUSER_URL ? { ROOT_DATABASE_URL: SUPERUSER_URL } : {}) },
    encoding: 'utf8',
    timeout: 60_000,
  });

const loginUrl = (login: string): string => {
  const url = new URL(h.ownerUrl);
  url.username = login;
  url.password = PASSWORD;
  return url.toString();
};

const connect = async (login: string): Promise<pg.Client> => {
  const c = new pg.Client(loginUrl(login));
  c.on('error', () => undefined);
  await c.connect();
  return c;
};

beforeAll(async () => {
  h = await startHarness();
  for (const [tenant, titles] of [
    ['acme', ['a1', 'a2']],
    ['globex', ['g1', 'g2', 'g3']],
  ] as const) {
    for (const title of titles) {
      const res = await h.graphql(`mutation { createDocument(input: { document: { title: "${title}" } }) { clientMutationId } }`, {
        token: h.token('sheratan_app', tenant),
      });
      expect(res.body.errors).toBeUndefined();
    }
  }
  for (const [login, tenant] of [
    [A, 'acme'],
    [B, 'globex'],
  ]) {
    const made = cli(['db:reporting-login', '--name', login!, '--tenant', tenant!, '--password', PASSWORD]);
    expect(made.stderr).toBe('');
  }
}, 180_000);

afterAll(async () => {
  if (SUPERUSER_URL) {
    const owner = await h.owner();
    await owner.query('delete from sheratan_private.tenant_logins where login_role = any($1)', [[A, B]]);
    for (const login of [A, B]) spawnSync('psql', [SUPERUSER_URL, '-qc', `drop owned by ${login}; drop role if exists ${login}`], { encoding: 'utf8' });
  }
  await h.stop();
});

/** Every role a hostile login would like to be: the superusers, the gateway's login, the owner, another reporting login. */
const targets = (): string[] => ['postgres', 'sheratan', 'sheratan_authenticator', B];

/** Ways of asking for another role in SQL: each a statement (or a few) to run in one simple query. */
const attempts: Array<(role: string) => string> = [
  (r) => `set session authorization ${r}`,
  (r) => `set session authorization '${r}'`,
  (r) => `select set_config('session_authorization', '${r}', false)`,
  (r) => `begin; set local session authorization ${r}`,
  (r) => `do $$ begin execute 'set session authorization ${r}'; end $$`,
  (r) => `do $$ begin perform set_config('session_authorization', '${r}', false); end $$`,
  (r) =>
    `create function pg_temp.become() returns text language sql set session_authorization = '${r}' as 'select current_user::text'; select pg_temp.become()`,
  (r) => `set role ${r}`,
  () => 'reset session authorization',
  () => 'set session authorization default',
];

/** What the login would then do, in the same query: read other tenants, read server files, plant code for a superuser to run. */
const harms = [
  `select 'HARM:' || string_agg(title, ',' order by title) from sheratan.documents`,
  `select 'HARM:' || length(pg_read_file('postgresql.conf'))`,
  `select 'HARM:' || count(*) from pg_catalog.pg_authid where rolpassword is not null`,
  `create or replace function pg_catalog.lower(text) returns text language sql as 'select ''pwned'''`,
  `grant sheratan_app to ${A}`,
];
/** What a harm may show: the login's own tenant, as it sees it anyway. */
const OWN_VIEW = 'HARM:a1,a2';

/** The login's own view, which must be unchanged after any attempt. */
const CHECK = `select session_user::text || '|' || current_user::text || '|' || current_setting('is_superuser') || '|' || (select string_agg(title, ',' order by title) from sheratan.documents)`;

test('no SQL makes a reporting login another role (psql, simple protocol; generated attempts)', () => {
  const expected = `${A}|${A}|off|a1,a2`;
  let tried = 0;
  for (const role of targets()) {
    for (const attempt of attempts) {
      for (const harm of harms) {
        const sql = `${attempt(role)}; ${harm}`;
        const r = spawnSync('psql', [loginUrl(A), '-XAtq', '-v', 'ON_ERROR_STOP=0', '-c', sql, '-c', CHECK], { encoding: 'utf8', timeout: 30_000 });
        // psql prints every statement's result: the attempt's own (a role name), the harm's, the check's.
        const lines = r.stdout.split('\n').filter(Boolean);
        // The attempt or the harm fails (or the engine ends the connection): the harm shows nothing beyond the
        // login's own view, and that view, if the connection is still there, is unchanged.
        const breach = lines.filter((l) => (l.includes('HARM:') && l !== OWN_VIEW) || (l.includes('|') && l !== expected));
        expect({ sql, breach }).toEqual({ sql, breach: [] });
        tried++;
      }
    }
  }
  expect(tried).toBe(targets().length * attempts.length * harms.length);
});

test('no start-up setting makes a reporting login another role (PGOPTIONS -c …)', () => {
  const expected = `${A}|${A}|off|a1,a2`;
  for (const role of targets()) {
    for (const option of [`-c session_authorization=${role}`, `-c role=${role}`, `--session_authorization=${role}`]) {
      for (const harm of harms) {
        const r = spawnSync('psql', [loginUrl(A), '-XAtq', '-v', 'ON_ERROR_STOP=0', '-c', harm, '-c', CHECK], {
          encoding: 'utf8',
          timeout: 30_000,
          env: { ...process.env, PGOPTIONS: option },
        });
        const lines = r.stdout.split('\n').filter(Boolean);
        const breach = lines.filter((l) => (l.includes('HARM:') && l !== OWN_VIEW) || (l.includes('|') && l !== expected));
        expect({ option, harm, breach }).toEqual({ option, harm, breach: [] });
        // Refused at login, as a server refuses it.
        expect({ option, refused: /FATAL: +permission denied to set (session authorization|role)/.test(r.stderr) }).toEqual({ option, refused: true });
      }
    }
  }
});

test('no SQL makes a reporting login another role (pg, extended protocol, parameters)', async () => {
  for (const role of targets()) {
    for (const text of [`select set_config('session_authorization', $1, false)`, `select set_config('role', $1, false)`]) {
      const c = await connect(A);
      const attempt = await c.query(text, [role]).then(
        () => 'ran',
        (err: Error) => err.message,
      );
      const after = await c
        .query<{ who: string; sup: string; titles: string }>(
          `select session_user::text as who, current_setting('is_superuser') as sup, (select string_agg(title, ',' order by title) from sheratan.documents) as titles`,
        )
        .then(
          (res) => res.rows[0],
          () => undefined, // the engine ended the connection
        );
      await c.end().catch(() => undefined);
      if (after) expect({ role, text, attempt, after }).toEqual({ role, text, attempt, after: { who: A, sup: 'off', titles: 'a1,a2' } });
      else expect(backend).toBe('embedded');
    }
  }
});

test('after every attempt, nothing the attempts tried to plant is there, and the gateway is unharmed', async () => {
  const owner = await h.owner();
  try {
    const lower = await owner.query<{ lang: string }>(
      `select l.lanname as lang from pg_proc p join pg_language l on l.oid = p.prolang where p.oid = 'pg_catalog.lower(text)'::regprocedure`,
    );
    expect(lower.rows[0]!.lang).toBe('internal');
    const granted = await owner.query(`select 1 from pg_auth_members m where m.member = $1::regrole and m.roleid = 'sheratan_app'::regrole`, [A]);
    expect(granted.rows).toEqual([]);
    if (backend === 'embedded') {
      // Sealed, the bootstrap role is reachable; it must be a member of nothing it could SET ROLE to.
      expect((await owner.query(`select roleid::regrole::text as r from pg_auth_members where member = 10`)).rows).toEqual([]);
    }
    const roles = await owner.query<{ rolname: string; rolsuper: boolean }>(`select rolname, rolsuper from pg_roles where rolname = any($1) order by rolname`, [
      [A, B],
    ]);
    expect(roles.rows).toEqual([
      { rolname: A, rolsuper: false },
      { rolname: B, rolsuper: false },
    ]);
  } finally {
    await owner.end();
  }
  const res = await h.graphql<{ allDocuments: { nodes: Array<{ title: string }> } }>('{ allDocuments(first: 10) { nodes { title } } }', {
    token: h.token('sheratan_app', 'globex'),
  });
  expect(res.body.errors).toBeUndefined();
  expect(res.body.data?.allDocuments.nodes.map((n) => n.title).sort()).toEqual(['g1', 'g2', 'g3']);
});

test('a reporting login cannot drop, alter or grant on the database', async () => {
  const database = new URL(h.ownerUrl).pathname.slice(1);
  const a = await connect(A);
  try {
    for (const sql of [`drop database ${database}`, `drop database if exists ${database}`, `alter database ${database} set work_mem = '1MB'`]) {
      await expect(a.query(sql)).rejects.toMatchObject({ code: '42501' });
    }
    // (A server answers a GRANT by a non-owner with a warning, "no privileges were granted"; the engine refuses it.)
    await a.query(`grant all on database ${database} to ${A}`).catch(() => undefined);
    expect((await a.query(`select has_database_privilege(current_user, current_database(), 'CREATE') as can`)).rows).toEqual([{ can: false }]);
    expect((await a.query<{ n: number }>('select count(*)::int as n from sheratan.documents')).rows).toEqual([{ n: 2 }]);
  } finally {
    await a.end();
  }
  const globex = await h.graphql<{ allDocuments: { totalCount: number } }>('{ allDocuments { totalCount } }', { token: h.token('sheratan_app', 'globex') });
  expect(globex.body.data?.allDocuments.totalCount).toBe(3);
});

test("one login cannot FETCH another's WITH HOLD cursor", async () => {
  const a = await connect(A);
  const b = await connect(B);
  try {
    await a.query('begin');
    await a.query('declare shared_name cursor with hold for select title from sheratan.documents order by title');
    await a.query('commit');
    // On the engine B waits while A holds cursors (they cannot be set aside); on a server it is refused at once.
    const fetched = b.query('fetch all from shared_name').then(
      (res) => ({ rows: res.rows }),
      (err: { code?: string }) => ({ code: err.code }),
    );
    expect((await a.query('fetch 1 from shared_name')).rows).toEqual([{ title: 'a1' }]);
    await a.query('close shared_name');
    expect(await fetched).toEqual({ code: '34000' });
  } finally {
    await a.end();
    await b.end();
  }
});

test("one login sees no other's prepared statements and cannot deallocate them", async () => {
  const a = await connect(A);
  const b = await connect(B);
  try {
    // The gateway prepares its statements too.
    expect((await h.graphql('{ allDocuments { totalCount } }')).body.errors).toBeUndefined();
    await a.query({ name: 'secret_protocol', text: "select 'protocol-secret-text' as s, $1::int as n", values: [1] });
    await a.query("prepare secret_sql as select 'sql-secret-text'");
    const seen = await b.query<{ name: string; statement: string }>('select name, statement from pg_prepared_statements');
    expect(seen.rows.filter((r) => /secret|sheratan|documents/i.test(r.statement))).toEqual([]);
    await b.query('deallocate all');
    expect((await a.query({ name: 'secret_protocol', text: "select 'protocol-secret-text' as s, $1::int as n", values: [2] })).rows).toEqual([
      { s: 'protocol-secret-text', n: 2 },
    ]);
    expect((await a.query('execute secret_sql')).rows).toEqual([{ '?column?': 'sql-secret-text' }]);
    expect((await h.graphql('{ allDocuments { totalCount } }')).body.errors).toBeUndefined();
  } finally {
    await a.end();
    await b.end();
  }
});

embeddedTest("the seal is the embedded engine's: a kill -9 while a restricted login holds the backend leaves it sealed, and the next start undoes it")(
  'an engine killed while sealed starts unsealed, and the login is still held to itself',
  async () => {
    const dir = tempDataDir();
    const port = await freePort();
    let engine = await startEngineProcess(dir, port);
    try {
      const owner = new pg.Client(engine.ownerUrl);
      await owner.connect();
      await owner.query(`create role crash_login login password '${PASSWORD}'`);
      await owner.end();
      const url = new URL(engine.ownerUrl);
      url.username = 'crash_login';
      url.password = PASSWORD;
      const login = new pg.Client(url.toString());
      login.on('error', () => undefined);
      await login.connect();
      // Its unit done, the backend stays in its state (sealed) until another client needs it.
      expect((await login.query('select session_user::text as who')).rows).toEqual([{ who: 'crash_login' }]);
      engine.child.kill('SIGKILL');
      await engine.exited;
      engine = await startEngineProcess(dir, port);
      const after = new pg.Client(engine.ownerUrl);
      await after.connect();
      try {
        expect((await after.query('select rolsuper from pg_roles where oid = 10')).rows).toEqual([{ rolsuper: true }]);
        expect((await after.query('select evtname from pg_event_trigger')).rows).toEqual([]);
      } finally {
        await after.end();
      }
      const again = new pg.Client(url.toString());
      await again.connect();
      try {
        await expect(again.query('set session authorization sheratan')).rejects.toThrow(/permission denied to set session authorization/);
      } finally {
        await again.end();
      }
    } finally {
      await engine.stop();
    }
  },
  120_000,
);

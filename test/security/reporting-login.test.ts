// A direct SQL login for a reporting tool (npm run db:reporting-login), used
// through psql as such a tool would: it reads its tenant's rows only, cannot
// write, and cannot widen what it sees by setting claims (or, on a server, by
// switching roles). The README's former recipe (`alter role … set
// jwt.claims.tenant`) could: that is the defect this guards against.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { SUPERUSER_URL } from '../support/backend.ts';

let h: Harness;
const LOGIN = `acme_reports_${process.pid}`;
const PASSWORD = 'reports-password-0123';

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
});
afterAll(async () => {
  if (SUPERUSER_URL) {
    const owner = await h.owner();
    await owner.query('delete from sheratan_private.tenant_logins where login_role = $1', [LOGIN]);
    spawnSync('psql', [SUPERUSER_URL, '-qc', `drop owned by ${LOGIN}; drop role if exists ${LOGIN}`], { encoding: 'utf8' });
  }
  await h.stop();
});

const cli = (args: string[]) =>
  spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), ...args], {
    // Creating a role needs a role-creating connection: on a server, the superuser for this one command.
    env: { ...process.env, ...h.cliEnv, ...(SUPERUSER_URL ? { ROOT_DATABASE_URL: SUPERUSER_URL } : {}) },
    encoding: 'utf8',
    timeout: 60_000,
  });

/** The login's connection string: the owner's, with the login's own name and password (on both backends). */
const loginUrl = (): string => {
  const url = new URL(h.ownerUrl);
  url.username = LOGIN;
  url.password = PASSWORD;
  return url.toString();
};

/** Runs SQL through psql as the login; returns the last line it printed, or the error. */
const psql = (sql: string): { out: string; err: string; status: number | null } => {
  const r = spawnSync('psql', [loginUrl(), '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8', timeout: 30_000 });
  return { out: r.stdout.trim().split('\n').at(-1) ?? '', err: r.stderr.trim(), status: r.status };
};

// The login, made once by whichever test needs it first (each test may run alone, in any order).
let made: ReturnType<typeof cli> | undefined;
const makeLogin = () => (made ??= cli(['db:reporting-login', '--name', LOGIN, '--tenant', 'acme', '--password', PASSWORD]));

test('db:reporting-login creates a login that reads its tenant only, and cannot write', () => {
  const made = makeLogin();
  expect(made.stderr).toBe('');
  expect(made.stdout.trim()).toBe(
    `login ${LOGIN} reads tenant acme only (as sheratan_readonly); connect with the owner's connection string, user ${LOGIN} and its password`,
  );
  expect(made.status).toBe(0);
  expect(psql("select string_agg(title, ',' order by title) from sheratan.documents")).toMatchObject({ out: 'a1,a2', status: 0 });
  const write = psql("insert into sheratan.documents (title) values ('x')");
  expect(write.status).not.toBe(0);
  expect(write.err).toMatch(/permission denied/);
});

test('setting the tenant claim does not widen what the login sees', () => {
  expect(makeLogin().status).toBe(0);
  expect(psql("set jwt.claims.tenant = 'globex'; select count(*) from sheratan.documents")).toMatchObject({ out: '2', status: 0 });
  expect(psql("select set_config('jwt.claims.tenant', 'globex', false); select count(*) from sheratan.documents")).toMatchObject({ out: '2', status: 0 });
  // A default for its own later sessions, if the server lets it set one, changes nothing either.
  psql("alter role current_user set jwt.claims.tenant = 'globex'");
  expect(psql('select count(*) from sheratan.documents')).toMatchObject({ out: '2', status: 0 });
});

test('switching to sheratan_readonly or sheratan_app does not widen it either', () => {
  expect(makeLogin().status).toBe(0);
  expect(psql("set role sheratan_readonly; set jwt.claims.tenant = 'globex'; select count(*) from sheratan.documents")).toMatchObject({ out: '2', status: 0 });
  const app = psql('set role sheratan_app');
  expect(app.status).not.toBe(0);
  expect(app.err).toMatch(/permission denied to set role "sheratan_app"/);
  expect(psql('reset role; select current_user = session_user, count(*) from sheratan.documents')).toMatchObject({ out: 't|2', status: 0 });
  // It reads its own binding only.
  expect(psql('select count(*) from sheratan_private.tenant_logins')).toMatchObject({ out: '1', status: 0 });
});

test('bad arguments are refused with the reason, and create nothing', () => {
  expect(cli(['db:reporting-login', '--name', 'Bad Name', '--tenant', 'acme', '--password', PASSWORD]).stderr).toMatch(/--name must be a role name/);
  expect(cli(['db:reporting-login', '--name', 'sheratan_x', '--tenant', 'acme', '--password', PASSWORD]).stderr).toMatch(/--name sheratan_x is reserved/);
  expect(cli(['db:reporting-login', '--name', 'ok_name', '--tenant', 'a\u0001b', '--password', PASSWORD]).stderr).toMatch(/--tenant is required/);
  expect(cli(['db:reporting-login', '--name', 'ok_name', '--tenant', 'acme', '--password', 'short']).stderr).toMatch(
    /--password is required, at least 12 characters/,
  );
});

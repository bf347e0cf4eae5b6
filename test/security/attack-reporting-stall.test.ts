// Attack: a reporting login making every tenant wait. Found by the attacker
// of issue 25 on the embedded engine: a login made by `npm run
// db:reporting-login` (read-only, one tenant) ran `select pg_sleep(12)`, and
// another tenant's `{ allDocuments { totalCount } }` over GraphQL waited
// 11.7 s for it; `select count(*) from generate_series(1, 30000000)` held it
// 9.8 s. The login's statement_timeout is 0 and it may set its own; the
// engine's one backend runs a statement inside one synchronous call that no
// timeout or cancel request can interrupt (packages/pglite-server/README.md, "Limits
// that remain"), and the gateway's request waits behind it without a bound
// (DB_POOL_TIMEOUT_MS covers taking a slot, not the backend being busy).
//
// The invariant (issue 25, item 2: no tenant may make another wait more than
// a configured bound), over generated long statements: while a reporting
// login runs one, another tenant's request is answered, with its data or a
// clear 503, within a bound. A server gives each login its own backend and
// holds it. The embedded engine cannot interrupt the statement, so its
// gateway stops waiting by itself after DB_POOL_TIMEOUT_MS and answers 503
// DATABASE_BUSY: a batch it gave up on never runs (channel.ts, a claim the
// two threads share), so a mutation refused that way stores nothing.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { projectRoot } from '../../src/config/paths.ts';
import { SUPERUSER_URL } from '../support/backend.ts';
import { rng } from '../support/embeddings.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
const LOGIN = `stall_${process.pid}`;
const PASSWORD = 'stall-password-0123';
/** How long another tenant may wait (generous: the suite shares two cores). */
const BOUND_MS = 3000;
const LONG_S = 8;

beforeAll(async () => {
  // Embedded, the default engine (a worker thread): its gateway gives up waiting by itself, in its own thread. Over
  // the socket (EMBEDDED_ENGINE=process) the engine's bound (sheratan.backend_wait_ms) is a timer of the engine's
  // thread, which cannot fire while a statement runs there: README, "Two ways to run".
  h = await startHarness({ NODE_ENV: 'production', DB_POOL_TIMEOUT_MS: '1500', EMBEDDED_ENGINE: 'thread' });
  const made = spawnSync(
    process.execPath,
    [path.join(projectRoot, 'src/cli.ts'), 'db:reporting-login', '--name', LOGIN, '--tenant', 'acme', '--password', PASSWORD],
    {
      env: { ...process.env, ...h.cliEnv, ...(SUPERUSER_URL ? { ROOT_DATABASE_URL: SUPERUSER_URL } : {}) },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(made.stderr).toBe('');
}, 180_000);

afterAll(async () => {
  if (SUPERUSER_URL && h) {
    const owner = await h.owner();
    await owner.query('delete from sheratan_private.tenant_logins where login_role = $1', [LOGIN]);
    await owner.end();
    spawnSync('psql', [SUPERUSER_URL, '-qc', `drop owned by ${LOGIN}; drop role if exists ${LOGIN}`], { encoding: 'utf8' });
  }
  await h?.stop();
});

/** Statements a read-only login may run that take about `s` seconds. */
const longStatements = (s: number): string[] => [
  `select pg_sleep(${s})`,
  `select pg_sleep_for('${s} seconds')`,
  `set statement_timeout = 0; select pg_sleep(${s})`,
  `select count(*) from generate_series(1, ${s * 3_000_000})`,
  `with recursive r(n) as (select 1 union all select n + 1 from r where n < ${s * 1_000_000}) select count(*) from r`,
];

test('a reporting login running a long statement makes no other tenant wait beyond a bound, and what was refused stores nothing', async () => {
  const next = rng(2511);
  const statements = longStatements(LONG_S);
  const waits: Array<{ statement: string; status: number; ms: number }> = [];
  for (let round = 0; round < 2; round++) {
    const statement = statements[Math.floor(next() * statements.length)]!;
    const url = new URL(h.ownerUrl);
    url.username = LOGIN;
    url.password = PASSWORD;
    const login = new pg.Client(url.toString());
    login.on('error', () => undefined);
    await login.connect();
    const running = login.query(statement).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = performance.now();
    const res = await h.graphql('{ allDocuments { totalCount } }', { token: h.token('sheratan_app', 'other') });
    waits.push({ statement, status: res.status, ms: Math.round(performance.now() - started) });
    const title = `during stall ${round}`;
    const write = await h.graphql('mutation ($t: String!) { ingestDocument(input: { title: $t, chunks: [] }) { clientMutationId } }', {
      variables: { t: title },
      token: h.token('sheratan_app', 'other'),
    });
    await running;
    await login.end();
    // A write refused as busy never lands, even once the backend is free
    // again: a later write of the same tenant lands first (had the refused
    // one been queued somewhere, it would have been stored before it).
    const later = await h.graphql('mutation ($t: String!) { ingestDocument(input: { title: $t, chunks: [] }) { clientMutationId } }', {
      variables: { t: `${title}, later` },
      token: h.token('sheratan_app', 'other'),
    });
    expect(later.status).toBe(200);
    const owner = await h.owner();
    const stored = (await owner.query('select count(*)::int as n from sheratan.documents where title = $1', [title])).rows[0].n;
    expect({ status: write.status, stored }).toEqual(write.status === 200 ? { status: 200, stored: 1 } : { status: 503, stored: 0 });
  }
  for (const wait of waits)
    expect({ ...wait, withinBound: wait.ms < BOUND_MS && (wait.status === 200 || wait.status === 503) }).toEqual({ ...wait, withinBound: true });
}, 120_000);

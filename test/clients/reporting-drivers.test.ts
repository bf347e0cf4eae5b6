// Issue 29: reporting tools' own drivers, from Debian (scripts/install-report-drivers.sh,
// which CI runs), against both backends, as a login of `npm run db:reporting-login`:
//   - JDBC (libpostgresql-jdbc-java, OpenJDK: Metabase, DBeaver, Tableau), a
//     Java program compiled here (test/clients/drivers/ReportingCheck.java);
//   - psycopg2 and psycopg 3 (Superset, notebooks), a Python program
//     (test/clients/drivers/reporting_check.py) run by Debian's python3;
//   - ODBC (odbc-postgresql through unixODBC: Excel, Power BI), driven with isql.
// Each one connects, lists the tables and views through its metadata, runs
// the reporting views with parameters (JDBC and psycopg 3 past their prepare
// threshold), streams a result (fetch size, named cursor, declare/fetch),
// reports the time zone it sent, and proves it can neither see another
// tenant nor write anything. The figures are checked against the generated
// activity (test/support/reporting-data.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';
import { startReporting, type ReportingHarness, type ReportingLoginInfo } from '../support/reporting.ts';
import { dayIn, generateActivity, searchMode, writeActivity, type Activity } from '../support/reporting-data.ts';

const JDBC_JAR = '/usr/share/java/postgresql.jar';
const PYTHON = '/usr/bin/python3';
const DRIVERS = path.join(projectRoot, 'test/clients/drivers');
const VIEWS = ['ann_index_usage', 'embedding_coverage', 'ingest_daily', 'job_daily', 'job_queue', 'search_daily', 'search_events', 'search_hourly'];
/** What a reporting login may not do: insert, update, delete, create, become the API role. */
const REFUSED = ['42501', '42501', '42501', '42501', '42501'];

// The time zone each driver sends at start-up is the session's on both backends (issue 29 item 1).
const zoneTest = test;
// (On the embedded engine these tests found three defects, fixed with them:
// start-up parameters ignored, psycopg 3's named cursor not found by its
// portal name, psqlODBC's DEALLOCATE of its protocol-level plan missed.)

let h: ReportingHarness;
let activity: Activity;
let login: ReportingLoginInfo;
let tmp: string;
const other = 'globex';

beforeAll(async () => {
  h = await startReporting();
  activity = generateActivity(2929);
  await writeActivity(await h.owner(), activity);
  login = h.login('acme_drivers', 'acme');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sheratan-drivers-'));
}, 300_000);
afterAll(async () => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  await h?.stop();
});

const mine = () => activity.searches.filter((s) => s.tenant === login.tenant);
const vectorSearches = () => String(mine().filter((s) => searchMode(s.filters) === 'vector').length);
const url = () => new URL(login.url);

function run(command: string, args: string[], env: Record<string, string> = {}, input?: string) {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 180_000, env: { ...process.env, ...env }, input });
  if (r.error) throw r.error;
  return r;
}

function json(r: ReturnType<typeof run>): Record<string, unknown> {
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

describe('JDBC (Debian libpostgresql-jdbc-java, OpenJDK)', () => {
  let result: Record<string, unknown>;
  beforeAll(() => {
    expect(existsSync(JDBC_JAR)).toBe(true);
    const classes = path.join(tmp, 'jdbc');
    const javac = run('javac', ['-d', classes, '-cp', JDBC_JAR, path.join(DRIVERS, 'ReportingCheck.java')]);
    if (javac.status !== 0) throw new Error(javac.stderr);
    const u = url();
    const jdbcUrl = `jdbc:postgresql://${u.hostname}:${u.port}${u.pathname}`;
    result = json(run('java', ['-Duser.timezone=Asia/Tokyo', '-cp', `${classes}:${JDBC_JAR}`, 'ReportingCheck', jdbcUrl, login.name, login.password, other]));
  }, 240_000);

  test('lists the views and tables through DatabaseMetaData', () => {
    expect(result.driver).toMatch(/PostgreSQL JDBC Driver 42\./);
    expect(result.views).toEqual(VIEWS);
    expect(result.tables).toEqual(expect.arrayContaining(['documents', 'document_chunks', 'jobs', 'search_logs']));
    expect(result.searchDailyColumns).toEqual(expect.arrayContaining(['day:date', 'searches:int8', 'p95_latency_ms:float8', 'zero_result_rate:float8']));
  });
  test('runs a view with parameters eight times, past prepareThreshold, as a server-side prepared statement', () => {
    expect(result.preparedRuns).toEqual(Array(8).fill(`${vectorSearches()}/1`));
    expect(result.serverPrepared).toBe(true);
  });
  test('streams a view with a fetch size: its tenant only', () => {
    expect(result.streamedRows).toBe(mine().length);
    expect(result.streamedTenants).toEqual([login.tenant]);
  });
  test('cannot write or become the API role, and sees nothing of another tenant whatever it sets', () => {
    expect(result.writes).toEqual(REFUSED);
    expect(result.otherTenantRows).toBe(0);
  });
  zoneTest("the session has the JVM's time zone, which the driver sends at start-up", () => {
    expect(result.jvmTimeZone).toBe('Asia/Tokyo');
    expect(result.timeZone).toBe('Asia/Tokyo');
  });
});

describe.each([
  ['psycopg2', 'America/New_York'],
  ['psycopg', 'Asia/Kolkata'],
] as const)('%s (Debian python3)', (driver, zone) => {
  let result: Record<string, unknown>;
  beforeAll(() => {
    result = json(run(PYTHON, [path.join(DRIVERS, 'reporting_check.py'), driver, login.url, other, zone]));
  }, 240_000);

  test('lists the views and tables through the catalog, as SQLAlchemy does', () => {
    expect(result.driver).toMatch(new RegExp(`^${driver} [23]\\.`));
    expect(result.views).toEqual(VIEWS);
    expect(result.tables).toEqual(expect.arrayContaining(['documents', 'document_chunks', 'jobs', 'search_logs']));
  });
  test('runs a view with parameters eight times (psycopg 3: prepared on the server past its threshold)', () => {
    expect(result.preparedRuns).toEqual(Array(8).fill(`${vectorSearches()}/1`));
    // psycopg2 binds on the client; psycopg 3 prepares from the sixth execution.
    expect(result.serverPrepared).toBe(driver === 'psycopg');
  });
  test("the views cut days in the session's time zone", () => {
    const timeZone = String(result.timeZone);
    const expected: Record<string, number> = {};
    for (const s of mine()) expected[dayIn(s.created_at, timeZone)] = (expected[dayIn(s.created_at, timeZone)] ?? 0) + 1;
    expect(result.searchesByDay).toEqual(expected);
  });
  // psycopg 3 DECLAREs the cursor in SQL, then describes its portal by that
  // name in the protocol (which the embedded engine once prefixed per session:
  // "portal "s15_reporting_stream" does not exist"); psycopg2 FETCHes in SQL.
  test('streams a view through a named server-side cursor: its tenant only', () => {
    expect(result.streamError).toBeUndefined();
    expect(result.streamedRows).toBe(mine().length);
    expect(result.streamedTenants).toEqual([login.tenant]);
  });
  test('cannot write or become the API role, and sees nothing of another tenant whatever it sets', () => {
    expect(result.writes).toEqual(REFUSED);
    expect(result.otherTenantRows).toBe(0);
  });
  zoneTest(`the session has the time zone and application_name sent in options (-c TimeZone=${zone})`, () => {
    expect(result.timeZone).toBe(zone);
    expect(result.applicationName).toBe(`reporting-check-${driver}`);
  });
});

describe('ODBC (Debian odbc-postgresql through unixODBC isql)', () => {
  /**
   * Runs SQL lines through isql in one session on a DSN of the login, with
   * psqlODBC's defaults but declare/fetch (7 rows at a time); libpq sends PGTZ
   * at start-up.
   */
  const isql = (lines: string[]) => {
    const u = url();
    const ini = path.join(tmp, 'odbc.ini');
    writeFileSync(
      ini,
      [
        '[sheratan_reports]',
        'Driver=PostgreSQL Unicode',
        `Servername=${u.hostname}`,
        `Port=${u.port}`,
        `Database=${decodeURIComponent(u.pathname.slice(1))}`,
        'UseDeclareFetch=1',
        'Fetch=7',
        'SSLmode=disable',
        '',
      ].join('\n'),
    );
    const r = run(
      'isql',
      ['-b', '-v', '-d|', 'sheratan_reports', login.name, login.password],
      { ODBCINI: ini, PGTZ: 'Europe/Berlin' },
      `${lines.join('\n')}\n`,
    );
    return { out: r.stdout, err: r.stderr, status: r.status, lines: r.stdout.split('\n').map((l) => l.trim()) };
  };
  /** Each line in a session of its own, so that each refusal stands alone. */
  const isqlEach = (lines: string[]) => lines.map((line) => isql([line]).out).join('\n');

  test('lists the views and tables through SQLTables (isql help)', () => {
    const r = isql(['help']);
    for (const view of VIEWS) expect(r.out).toMatch(new RegExp(`sheratan_reporting\\|${view}\\|VIEW`));
    expect(r.out).toMatch(/sheratan\|documents\|TABLE/);
  });
  // psqlODBC prepares such statements at the protocol level under a name of
  // its own (_PLAN0x…), frees it with SQL DEALLOCATE and parses the same name
  // again: the embedded engine once missed the DEALLOCATE (its protocol-level
  // names carry a per-session prefix) and the next parse failed with 42P05.
  test('runs a view eight times through a prepared statement in one session', () => {
    const r = isql([
      'prepare daily(text, date) as select coalesce(sum(searches), 0)::bigint from sheratan_reporting.search_daily where mode = $1 and day >= $2',
      ...Array.from({ length: 8 }, () => "execute daily('vector', '2000-01-01')"),
    ]);
    expect(r.out).not.toMatch(/ERROR/);
    expect(r.lines.filter((l) => l === vectorSearches())).toHaveLength(8);
  });
  test('streams a view with declare/fetch: its tenant only', () => {
    const r = isql(['select tenant from sheratan_reporting.search_events order by id']);
    expect(r.lines.filter((l) => l === login.tenant)).toHaveLength(mine().length);
    expect(r.lines.filter((l) => l === other)).toHaveLength(0);
  });
  test('cannot write or become the API role, and sees nothing of another tenant whatever it sets', () => {
    const refused = isqlEach([
      "insert into sheratan.documents (title) values ('odbc')",
      "update sheratan.documents set title = 'odbc'",
      'delete from sheratan.search_logs',
      'create table sheratan_reporting.odbc (x int)',
      'set role sheratan_app',
    ]);
    expect(refused.match(/\[42501\]/g) ?? []).toHaveLength(5);
    const r = isql([
      `select 'other:' || ((select count(*) from sheratan.documents where tenant = '${other}') + (select count(*) from sheratan_reporting.search_events where tenant = '${other}')) from (select set_config('jwt.claims.tenant', '${other}', false)) s`,
    ]);
    expect(r.out).toMatch(/other:0/);
  });
  zoneTest('the session has the time zone libpq sends from PGTZ', () => {
    const r = isql(["select 'zone:' || current_setting('TimeZone')"]);
    expect(r.out).toMatch(/zone:Europe\/Berlin/);
  });
});

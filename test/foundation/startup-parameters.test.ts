// Issue 29 item 1: the settings a client sends at connection time (start-up
// parameters, and `options` with `-c name=value`) are the session's, on the
// embedded engine exactly as on a server: applied above ALTER ROLE … SET,
// reported back at login, refused at login with the server's own error when
// bad, and kept by the session while the one embedded backend passes between
// clients. The same tests run against a real server, which is the reference.
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { withPgClient } from '../../src/database/connect.ts';
import { startReporting, type ReportingHarness, type ReportingLoginInfo } from '../support/reporting.ts';

let h: ReportingHarness;
let login: ReportingLoginInfo;

beforeAll(async () => {
  h = await startReporting();
  login = h.login('startup_params', 'acme');
}, 300_000);
afterAll(() => h?.stop());

/** Settings as `-c` switches, spaces and backslashes escaped as libpq's options need them. */
const options = (settings: Record<string, string>) =>
  Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${v.replace(/\\/g, '\\\\').replace(/ /g, '\\ ')}`)
    .join(' ');

async function connect(config: Partial<pg.ClientConfig> = {}): Promise<{ client: pg.Client; reported: Record<string, string> }> {
  const client = new pg.Client({ connectionString: login.url, ...config });
  client.on('error', () => undefined);
  const reported: Record<string, string> = {};
  (client as unknown as { connection: { on(e: string, f: (m: { parameterName: string; parameterValue: string }) => void): void } }).connection.on(
    'parameterStatus',
    (m) => (reported[m.parameterName] = m.parameterValue),
  );
  await client.connect();
  return { client, reported };
}

const show = async (client: pg.Client, names: string[]): Promise<Record<string, string>> =>
  (await client.query(`select ${names.map((n, i) => `current_setting($${i + 1}) as "${n}"`).join(', ')}`, names)).rows[0];

// Values as the server normalises them.
const SETTINGS: Record<string, [sent: string, shown: string]> = {
  TimeZone: ['Asia/Kolkata', 'Asia/Kolkata'],
  DateStyle: ['SQL, DMY', 'SQL, DMY'],
  IntervalStyle: ['iso_8601', 'iso_8601'],
  extra_float_digits: ['1', '1'],
  search_path: ['sheratan_reporting, public', 'sheratan_reporting, public'],
  application_name: ['startup test', 'startup test'],
  statement_timeout: ['1234', '1234ms'],
  client_encoding: ['UTF8', 'UTF8'],
  'jwt.claims.note': ['a\\b c', 'a\\b c'],
};

test("options -c name=value: each setting is the session's, and the reported ones come back at login", async () => {
  const sent = Object.fromEntries(Object.entries(SETTINGS).map(([k, [v]]) => [k, v]));
  const { client, reported } = await connect({ options: options(sent) });
  try {
    expect(await show(client, Object.keys(SETTINGS))).toEqual(Object.fromEntries(Object.entries(SETTINGS).map(([k, [, shown]]) => [k, shown])));
    expect(reported).toMatchObject({
      TimeZone: 'Asia/Kolkata',
      DateStyle: 'SQL, DMY',
      IntervalStyle: 'iso_8601',
      application_name: 'startup test',
      client_encoding: 'UTF8',
    });
    // Days are cut in the session's zone: 20:00 UTC is the next day in Kolkata.
    expect((await client.query("select ('2026-03-05 20:00:00+00'::timestamptz)::date::text as d")).rows[0].d).toBe('06/03/2026');
  } finally {
    await client.end();
  }
});

test('start-up parameters of their own (libpq: PGTZ, PGDATESTYLE, PGAPPNAME, PGOPTIONS) through psql', () => {
  const r = spawnSync(
    'psql',
    [
      login.url,
      '-XAtq',
      '-c',
      "select current_setting('TimeZone'), current_setting('DateStyle'), current_setting('application_name'), current_setting('extra_float_digits')",
    ],
    {
      encoding: 'utf8',
      env: { ...process.env, PGTZ: 'America/New_York', PGDATESTYLE: 'Postgres, MDY', PGAPPNAME: 'psql-startup', PGOPTIONS: '-c extra_float_digits=3' },
      timeout: 60_000,
    },
  );
  expect(r.stderr).toBe('');
  expect(r.stdout.trim()).toBe('America/New_York|Postgres, MDY|psql-startup|3');
});

test.each([
  ['an unknown setting', { options: '-c no_such_setting=1' }, '42704', 'unrecognized configuration parameter "no_such_setting"'],
  ['a bad value', { options: '-c TimeZone=Mars/Olympus' }, '22023', 'invalid value for parameter "TimeZone": "Mars/Olympus"'],
  ['a setting the login may not make', { options: '-c log_statement=all' }, '42501', 'permission denied to set parameter "log_statement"'],
  ['a switch that is not a setting', { options: '-x' }, '42601', 'invalid command-line argument for server process: -x'],
  ['a word that is not a switch', { options: '-c TimeZone=UTC foo' }, '42601', 'invalid command-line argument for server process: foo'],
  ['-c without its setting', { options: '-c' }, '42601', 'invalid command-line argument for server process: -c'],
  ['-c without a value', { options: '-c foo' }, '42601', '-c foo requires a value'],
  ['--name without a value', { options: '--foo' }, '42601', '--foo requires a value'],
] as const)("%s is refused at login with the server's error", async (_what, config, code, message) => {
  const err = (await connect(config as Partial<pg.ClientConfig>).then(
    ({ client }) => client.end().then(() => null),
    (e: unknown) => e,
  )) as { code?: string; message?: string } | null;
  expect(err).not.toBeNull();
  expect({ code: err!.code, message: err!.message }).toEqual({ code, message });
});

test.each([
  [{ PGTZ: 'Mars/Olympus' }, 'invalid value for parameter "TimeZone": "Mars/Olympus"'],
  [{ PGCLIENTENCODING: 'KLINGON' }, 'invalid value for parameter "client_encoding": "KLINGON"'],
  [{ PGDATESTYLE: 'Stardate' }, 'invalid value for parameter "DateStyle": "Stardate"'],
])("a bad start-up parameter of its own (%j, through psql) is refused at login with the server's error", (env, message) => {
  const r = spawnSync('psql', [login.url, '-XAtq', '-c', 'select 1'], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  expect(r.status).not.toBe(0);
  expect(r.stdout).toBe('');
  expect(r.stderr).toContain(`FATAL:  ${message}`);
});

test('each session keeps its own settings while the backend passes between clients', async () => {
  const zones = ['Asia/Tokyo', 'America/New_York', 'UTC', 'Europe/Berlin'];
  const clients = await Promise.all(zones.map((z, i) => connect({ options: options({ TimeZone: z, extra_float_digits: String(i - 1) }) })));
  try {
    for (let round = 0; round < 3; round++) {
      for (const [i, { client }] of clients.entries()) {
        expect(await show(client, ['TimeZone', 'extra_float_digits'])).toEqual({ TimeZone: zones[i], extra_float_digits: String(i - 1) });
      }
    }
    // A later SET is the session's too, and no one else's.
    await clients[0]!.client.query("set time zone 'Pacific/Auckland'");
    expect((await show(clients[1]!.client, ['TimeZone'])).TimeZone).toBe('America/New_York');
    expect((await show(clients[0]!.client, ['TimeZone'])).TimeZone).toBe('Pacific/Auckland');
  } finally {
    await Promise.all(clients.map(({ client }) => client.end()));
  }
});

// Start-up settings are the session's reset values, as on a server: RESET,
// SET … TO DEFAULT, RESET ALL and DISCARD ALL return to them, transactionally.
// Each step is its own message, and another client runs between steps (once a
// transaction ends, on the embedded engine), so the backend passes between
// them; the same steps run on a server.
const STARTED = { TimeZone: 'Asia/Tokyo', extra_float_digits: '2' };
test.each<[string, string[], Record<string, string>]>([
  ['RESET', ["set time zone 'Pacific/Auckland'", 'reset timezone'], STARTED],
  ['SET … TO DEFAULT', ["set time zone 'Pacific/Auckland'", 'set timezone to default'], STARTED],
  [
    'SET … = DEFAULT and SET TIME ZONE DEFAULT',
    ['set extra_float_digits = 3', 'set extra_float_digits = default', "set time zone 'UTC'", 'set time zone default'],
    STARTED,
  ],
  ['RESET ALL', ["set time zone 'Pacific/Auckland'", 'set extra_float_digits = 0', 'reset all'], STARTED],
  ['DISCARD ALL', ["set time zone 'Pacific/Auckland'", 'set extra_float_digits = 0', 'discard all'], STARTED],
  ['a later SET still wins', ['reset all', "set time zone 'Europe/Berlin'"], { ...STARTED, TimeZone: 'Europe/Berlin' }],
  ['RESET in a transaction, committed', ["set time zone 'Pacific/Auckland'", 'begin', 'reset timezone', 'commit'], STARTED],
  [
    'RESET in a transaction, rolled back',
    ["set time zone 'Pacific/Auckland'", 'begin', 'reset timezone', 'rollback'],
    { ...STARTED, TimeZone: 'Pacific/Auckland' },
  ],
  ['RESET ALL in a transaction, rolled back', ['set extra_float_digits = 0', 'begin', 'reset all', 'rollback'], { ...STARTED, extra_float_digits: '0' }],
  [
    'RESET to a savepoint rolled back',
    ['begin', "set time zone 'Pacific/Auckland'", 'savepoint a', 'reset timezone', 'rollback to a', 'commit'],
    { ...STARTED, TimeZone: 'Pacific/Auckland' },
  ],
  ['one message: a transaction that resets', ["set time zone 'Pacific/Auckland'", 'begin; reset timezone; commit'], STARTED],
  ['SET LOCAL ends with its transaction', ['begin', "set local time zone 'Pacific/Auckland'", 'commit'], STARTED],
  [
    'RESET then SET LOCAL in a transaction',
    ["set time zone 'Pacific/Auckland'", 'begin', 'reset timezone', "set local time zone 'Europe/Berlin'", 'commit'],
    STARTED,
  ],
  [
    'RESET in a failed transaction',
    ["set time zone 'Pacific/Auckland'", 'begin', 'reset timezone', 'select 1/0', 'rollback'],
    { ...STARTED, TimeZone: 'Pacific/Auckland' },
  ],
])('start-up settings are reset values, as on a server: %s', async (_what, steps, expected) => {
  const { client } = await connect({ options: options(STARTED) });
  const other = await connect();
  try {
    // The other client's queries wait while a transaction holds the embedded backend: not awaited until the end.
    const others: Array<Promise<unknown>> = [];
    for (const step of steps) {
      await client.query(step).catch(() => undefined);
      others.push(other.client.query('select 1'));
    }
    await Promise.all(others);
    expect(await show(client, Object.keys(expected))).toEqual(expected);
  } finally {
    await Promise.all([client.end(), other.client.end()]);
  }
});

test('inside a transaction, RESET is the start-up value at once; a setting not sent at start-up returns to the default', async () => {
  const { client } = await connect({ options: options(STARTED) });
  try {
    const before = (await show(client, ['DateStyle'])).DateStyle;
    await client.query("set time zone 'Pacific/Auckland'");
    await client.query("set DateStyle = 'German'");
    await client.query('begin');
    await client.query('reset all');
    expect(await show(client, ['TimeZone', 'extra_float_digits', 'DateStyle'])).toEqual({ ...STARTED, DateStyle: before });
    await client.query('rollback');
    expect(await show(client, ['TimeZone', 'DateStyle'])).toEqual({ TimeZone: 'Pacific/Auckland', DateStyle: 'German, DMY' });
  } finally {
    await client.end();
  }
});

test('ALTER ROLE … SET still applies beneath them', async () => {
  const admin = h.database.superuserUrl ?? h.ownerUrl;
  const role = login.name;
  await withPgClient(admin, (c) =>
    c.query(`alter role ${c.escapeIdentifier(role)} set DateStyle = 'German, DMY'; alter role ${c.escapeIdentifier(role)} set extra_float_digits = 0`),
  );
  try {
    const { client } = await connect({ options: '-c extra_float_digits=2' });
    try {
      expect(await show(client, ['DateStyle', 'extra_float_digits'])).toEqual({ DateStyle: 'German, DMY', extra_float_digits: '2' });
      // They are reset values too: RESET ALL returns to them.
      await client.query("set DateStyle = 'ISO'; set extra_float_digits = 3");
      await client.query('reset all');
      expect(await show(client, ['DateStyle', 'extra_float_digits'])).toEqual({ DateStyle: 'German, DMY', extra_float_digits: '2' });
    } finally {
      await client.end();
    }
  } finally {
    await withPgClient(admin, (c) => c.query(`alter role ${c.escapeIdentifier(role)} reset all`));
  }
});

test('a custom (dotted) start-up setting, and a later SET of it, survive the backend passing to another client', async () => {
  const { client } = await connect({ options: options({ 'app.tenant_note': 'from start-up', TimeZone: 'Asia/Tokyo' }) });
  const other = await connect();
  try {
    await other.client.query('select 1'); // the backend passes to the other client and back
    expect(await show(client, ['app.tenant_note', 'TimeZone'])).toEqual({ 'app.tenant_note': 'from start-up', TimeZone: 'Asia/Tokyo' });
    await client.query("set app.tenant_note = 'changed'");
    await other.client.query('select 1');
    expect(await show(client, ['app.tenant_note'])).toEqual({ 'app.tenant_note': 'changed' });
  } finally {
    await Promise.all([client.end(), other.client.end()]);
  }
});

// Bytes from one client affect only that client: malformed startup packets,
// repeated negotiation, oversized lengths, unknown message types after login,
// silent connections and too many of them are refused with an error and the
// connection closed, while another client's queries go on undisturbed. And a
// socket client's session state never reaches the next holder of the backend,
// whatever SQL it used to change it.
import net from 'node:net';
import { rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { EmbeddedEngine } from '@sheratan/pglite-server';
import { startSupervisedEngine } from './support/supervised-engine.ts';
import { describeEmbedded, tempDataDir } from './support/backend.ts';
import { waitFor } from './support/wait-for.ts';
import { errorText, int32, message, SSL_REQUEST, startupPacket } from './support/wire-bytes.ts';

describeEmbedded("it tests the embedded engine's own wire-protocol listener", 'the embedded listener under malformed input', () => {
  let dataDir: string;
  let engine: EmbeddedEngine;
  const MAX_CONNECTIONS = 12;
  const MAX_COPY_IN = 1024 * 1024;

  beforeAll(async () => {
    dataDir = tempDataDir();
    engine = await startSupervisedEngine(dataDir, {
      purpose: 'test',
      limits: { maxConnections: MAX_CONNECTIONS, startupTimeoutMs: 1500, maxCopyInBytes: MAX_COPY_IN },
      idleInTransactionTimeoutMs: 1000,
    });
    const setup = new pg.Client(engine.url());
    await setup.connect();
    await setup.query('create role sheratan_authenticator login noinherit');
    await setup.end();
  });
  afterAll(async () => {
    await engine.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Sends `bytes` on a raw connection; resolves with what came back once the server closed it (or after `ms`). */
  function raw(bytes: Buffer[], ms = 5000): Promise<{ reply: Buffer; closedBy: 'server' | 'timeout'; after: number }> {
    return new Promise((resolve) => {
      const started = Date.now();
      const socket = net.connect(engine.port, engine.host);
      const parts: Buffer[] = [];
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ reply: Buffer.concat(parts), closedBy: 'timeout', after: Date.now() - started });
      }, ms);
      socket.on('data', (d) => parts.push(d));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ reply: Buffer.concat(parts), closedBy: 'server', after: Date.now() - started });
      });
      socket.on('connect', () => {
        for (const b of bytes) socket.write(b);
      });
    });
  }
  const password = (): Buffer => message('p', Buffer.from(`${engine.password}\0`));

  /** A normal client's query latencies while `during` runs. */
  /**
   * Runs `during` while another client queries in a loop: it must keep being
   * served (at least one query completes while `during` runs, none fails).
   * The worst latency is printed, not judged: timings belong to benchmarks.
   */
  async function undisturbed<T>(what: string, during: () => Promise<T>): Promise<{ result: T; completed: number; errors: number }> {
    const client = new pg.Client(engine.url());
    await client.connect();
    let stop = false;
    let worstMs = 0;
    let errors = 0;
    let completed = 0;
    const load = (async () => {
      while (!stop) {
        const started = Date.now();
        await client.query('select count(*) from pg_class').then(
          () => completed++,
          () => errors++,
        );
        worstMs = Math.max(worstMs, Date.now() - started);
      }
    })();
    try {
      const result = await during();
      const served = completed;
      console.log(`${what}: another client's ${served} queries meanwhile, the slowest ${worstMs} ms`);
      return { result, completed: served, errors };
    } finally {
      stop = true;
      await load;
      await client.end();
    }
  }

  test('a zero-length startup packet (as 8 bytes with the SSLRequest code) is refused at once, a thousand times over, without stalling anyone', async () => {
    const zero = Buffer.concat([int32(0), int32(80877103)]);
    const { result, completed, errors } = await undisturbed('1,000 zero-length startup packets', async () => {
      const replies = [];
      // In batches below the connection cap (this file's engine allows 12).
      for (let i = 0; i < 1000; i += 8) replies.push(...(await Promise.all(Array.from({ length: 8 }, () => raw([zero])))));
      return replies;
    });
    expect(result.every((r) => r.closedBy === 'server' && /invalid length of startup packet: 0 bytes/.test(errorText(r.reply)))).toBe(true);
    expect(errors).toBe(0);
    expect(completed).toBeGreaterThan(0);
  });

  test('a startup packet announcing 2 GiB is refused before anything is buffered; so is SSL negotiation twice', async () => {
    const huge = await raw([Buffer.concat([int32(0x7fffffff), int32(196608)])]);
    expect(huge.closedBy).toBe('server');
    expect(errorText(huge.reply)).toMatch(/invalid length of startup packet: 2147483647 bytes \(at least 8, at most 10000\)/);
    const twice = await raw([SSL_REQUEST, SSL_REQUEST]);
    expect(twice.reply[0]).toBe('N'.charCodeAt(0));
    expect(errorText(twice.reply)).toBe('SSL or GSS negotiation requested twice');
  });

  test('a message of an unknown type after login is answered with an error and the connection closed; the engine serves new clients', async () => {
    const { result, errors } = await undisturbed('junk after the password', () =>
      raw([startupPacket('sheratan'), password(), message('z', Buffer.from('junk'))]),
    );
    expect(result.closedBy).toBe('server');
    expect(errorText(result.reply.subarray(result.reply.lastIndexOf('E'.charCodeAt(0))))).toMatch(/unsupported frontend message type 'z' \(0x7a\)/);
    expect(errors).toBe(0);
    const oversized = await raw([startupPacket('sheratan'), password(), Buffer.concat([Buffer.from('Q'), int32(0x7ffffff0)])]);
    expect(errorText(oversized.reply.subarray(oversized.reply.lastIndexOf('E'.charCodeAt(0))))).toMatch(/invalid length of message 'Q': 2147483632 bytes/);
    const fresh = new pg.Client(engine.url());
    await fresh.connect();
    expect((await fresh.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    await fresh.end();
  });

  test('a connection that never logs in is closed after the startup timeout', async () => {
    const silent = await raw([], 10_000);
    expect(silent.closedBy).toBe('server');
    expect(errorText(silent.reply)).toBe('no login within 1500 ms (startup timeout)');
    expect(silent.after).toBeGreaterThanOrEqual(1400);
    expect(silent.after).toBeLessThan(5000);
  });

  test('past the connection cap a client is told "too many clients"; the others keep working', async () => {
    const sockets = await Promise.all(
      Array.from(
        { length: MAX_CONNECTIONS },
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect(engine.port, engine.host, () => resolve(s));
            s.on('error', () => undefined);
          }),
      ),
    );
    const full = `sorry, too many clients already (the embedded engine accepts ${MAX_CONNECTIONS} connections)`;
    try {
      // (The engine counts a socket once its accept has run: asked until it has.)
      let said = '';
      await waitFor(async () => (said = errorText((await raw([startupPacket('sheratan')])).reply)) === full, 10_000, 'the cap to be reached');
      expect(said).toBe(full);
    } finally {
      for (const s of sockets) s.destroy();
    }
    // Once the engine has seen them close, a client gets in again.
    let again!: pg.Client;
    await waitFor(
      () => {
        again = new pg.Client(engine.url());
        return again.connect().then(
          () => true,
          () => false,
        );
      },
      10_000,
      'a free connection slot',
    );
    expect((await again.query('select 2 as two')).rows).toEqual([{ two: 2 }]);
    await again.end();
  });

  test.each([
    ['set_config(…, (false))', "select set_config('default_transaction_read_only', 'on', (false))"],
    ['a comment inside SET', 'set/**/session_replication_role = replica'],
    ['a comment before SET', "/*x*/ set statement_timeout = '1234ms'"],
  ])("a socket client's session state changed with %s stays its own", async (_name, sql) => {
    const a = new pg.Client(engine.url());
    await a.connect();
    await a.query(sql);
    const b = new pg.Client(engine.url());
    await b.connect();
    const seen = await b.query(
      "select current_setting('default_transaction_read_only') as ro, current_setting('session_replication_role') as srr, current_setting('statement_timeout') as st",
    );
    expect(seen.rows).toEqual([{ ro: 'off', srr: 'origin', st: '0' }]);
    // …and the client that set it still has it.
    const own = await a.query(
      "select current_setting('default_transaction_read_only') as ro, current_setting('session_replication_role') as srr, current_setting('statement_timeout') as st",
    );
    expect(own.rows[0]).not.toEqual({ ro: 'off', srr: 'origin', st: '0' });
    await Promise.all([a.end(), b.end()]);
  });

  test('SQL-level PREPAREd statements belong to their connection: others neither see nor run them, and may use the same names', async () => {
    const a = new pg.Client(engine.url());
    const b = new pg.Client(engine.url());
    await Promise.all([a.connect(), b.connect()]);
    await a.query("prepare mine as select 'a' as who");
    await a.query('select 1; prepare plus_one(int) as select $1 + 1 as v; select 2');
    const seen = await b.query('select name from pg_prepared_statements where from_sql');
    expect(seen.rows).toEqual([]);
    await expect(b.query('execute mine')).rejects.toThrow(/prepared statement "mine" does not exist/);
    await b.query("prepare mine as select 'b' as who");
    expect((await a.query('execute mine')).rows).toEqual([{ who: 'a' }]);
    expect((await b.query('execute mine')).rows).toEqual([{ who: 'b' }]);
    expect((await a.query('execute plus_one(41)')).rows).toEqual([{ v: 42 }]);
    expect((await a.query('select name from pg_prepared_statements where from_sql order by name')).rows).toEqual([{ name: 'mine' }, { name: 'plus_one' }]);
    await a.query('deallocate mine');
    await expect(a.query('execute mine')).rejects.toThrow(/does not exist/);
    await a.end();
    // Gone with their connection.
    const c = new pg.Client(engine.url());
    await c.connect();
    expect((await c.query('select name from pg_prepared_statements where from_sql')).rows).toEqual([]);
    expect((await b.query('execute mine')).rows).toEqual([{ who: 'b' }]);
    await Promise.all([b.end(), c.end()]);
  });

  test('a login starts with the settings a server applies at login: ALTER DATABASE … SET, then ALTER ROLE … SET', async () => {
    const owner = new pg.Client(engine.url());
    await owner.connect();
    await owner.query("create role settings_login login password 'settings-login-password'");
    await owner.query("alter role settings_login set statement_timeout = '4321ms'");
    await owner.query(
      "do $$ begin execute format('alter database %I set work_mem = %L', current_database(), '5MB'); execute format('alter database %I set statement_timeout = %L', current_database(), '999ms'); end $$",
    );
    await owner.end();
    const url = new URL(engine.url());
    url.username = 'settings_login';
    url.password = 'settings-login-password';
    const login = new pg.Client(url.toString());
    await login.connect();
    const other = new pg.Client(engine.url());
    await other.connect();
    const show = "select current_setting('statement_timeout') as st, current_setting('work_mem') as wm";
    expect((await login.query(show)).rows).toEqual([{ st: '4321ms', wm: '5MB' }]); // the role's wins over the database's
    expect((await other.query(show)).rows).toEqual([{ st: '999ms', wm: '5MB' }]);
    await other.query("do $$ begin execute format('alter database %I reset all', current_database()); end $$");
    await Promise.all([login.end(), other.end()]);
  });

  test('reset role returns a login to itself, not to the engine superuser', async () => {
    const auth = new pg.Client(engine.url('sheratan_authenticator'));
    await auth.connect();
    try {
      const who = await auth.query("reset role; select session_user as s, current_user as c, current_setting('is_superuser') as su");
      expect((who as unknown as pg.QueryResult[])[1]!.rows).toEqual([{ s: 'sheratan_authenticator', c: 'sheratan_authenticator', su: 'off' }]);
      await expect(auth.query('set role postgres')).rejects.toThrow(/permission denied to set role "postgres"/);
    } finally {
      await auth.end();
    }
  });

  test('a client idle inside a transaction while others wait is ended (25P03) after the timeout, its transaction rolled back; alone, it may idle', async () => {
    const idler = new pg.Client(engine.url());
    const told: Array<Error & { code?: string }> = [];
    idler.on('error', (err) => told.push(err));
    await idler.connect();
    await idler.query('create table if not exists idle_probe (n int)');
    await idler.query('begin');
    await idler.query('insert into idle_probe values (1)');
    // Nobody waits: the idle transaction is left alone, past the timeout.
    await new Promise((r) => setTimeout(r, 1500));
    await idler.query('insert into idle_probe values (2)');
    // Another client arrives (its login already needs the backend) and waits.
    const started = Date.now();
    const other = new pg.Client(engine.url());
    await other.connect();
    const seen = await other.query('select count(*)::int as n from idle_probe');
    const waited = Date.now() - started;
    expect(seen.rows).toEqual([{ n: 0 }]); // rolled back, not committed
    // The timeout is 1000 ms, counted in the engine's thread from the moment the other client waits (a few ms of skew either way).
    expect(waited).toBeGreaterThanOrEqual(850);
    expect(waited).toBeLessThan(5000);
    const after = await idler.query('select 1').then(
      () => 'answered',
      (err: Error & { code?: string }) => err.message,
    );
    expect(after).not.toBe('answered');
    expect(told[0]).toMatchObject({
      code: '25P03',
      message: expect.stringMatching(
        /^terminating connection due to idle-in-transaction timeout: .* for 1000 ms while other clients waited \(IDLE_IN_TRANSACTION_TIMEOUT_MS\)$/,
      ),
    });
    await other.end();
  });

  test("COPY FROM STDIN past the engine's limit fails with an error naming it and stores nothing; the connection and others go on", async () => {
    const client = new pg.Client(engine.url());
    await client.connect();
    await client.query('create table copy_cap (t text)');
    const row = `${'x'.repeat(1000)}\n`;
    const { result, errors, completed } = await undisturbed('a COPY past the limit', async () => {
      const copy = client.query(copyFrom('copy copy_cap from stdin'));
      return pipeline(Readable.from(Array.from({ length: 2000 }, () => row)), copy).then(
        () => 'loaded',
        (err: Error) => err.message,
      );
    });
    expect(errors).toBe(0);
    expect(completed).toBeGreaterThan(0);
    expect(result).toMatch(new RegExp(`COPY data exceeds the embedded engine's limit of ${MAX_COPY_IN} bytes per command; split the load`));
    expect((await client.query('select count(*)::int as n from copy_cap')).rows).toEqual([{ n: 0 }]);
    // Just under the limit is fine.
    await pipeline(Readable.from(Array.from({ length: 900 }, () => row)), client.query(copyFrom('copy copy_cap from stdin')));
    expect((await client.query('select count(*)::int as n from copy_cap')).rows).toEqual([{ n: 900 }]);
    await client.end();
  });

  test('COPY … FROM STDIN is recognised by its statement only: in a string, a comment or a function body it is just text', async () => {
    const client = new pg.Client(engine.url());
    await client.connect();
    const texts = await client.query("select 'copy t from stdin' as a, $$copy t from stdin$$ as b /* copy t from stdin */ -- copy t from stdin\n");
    expect(texts.rows).toEqual([{ a: 'copy t from stdin', b: 'copy t from stdin' }]);
    await client.query("create or replace function copy_text() returns text language sql as $f$ select 'copy x from stdin' $f$");
    expect((await client.query('select copy_text() as t')).rows).toEqual([{ t: 'copy x from stdin' }]);
    // Two COPY FROM STDIN in one query message are refused with a clear error (a server would run them one after the other).
    await expect(client.query('copy copy_cap from stdin; copy copy_cap from stdin')).rejects.toThrow(
      /the embedded engine runs one COPY … FROM STDIN per query message/,
    );
    expect((await client.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
    await client.end();
  });
});

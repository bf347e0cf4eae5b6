// A socket session's bounded wait for the embedded engine's one backend
// (`options=-c sheratan.backend_wait_ms=N`, which the gateway sets to
// DB_POOL_TIMEOUT_MS when it reaches the engine over its socket,
// EMBEDDED_ENGINE=process): while another client holds the backend, every
// kind of message unit (a simple query, an extended-protocol query, a named
// statement, a login) fails after the bound with SQLSTATE SB000, runs
// nothing, and leaves the connection usable; without the setting a session
// waits as before; a bad value is refused at login, naming the setting.
import { rmSync } from 'node:fs';
import pg from 'pg';
import type { EmbeddedEngine } from '@sheratan/pglite-server';
import { describeEmbedded, tempDataDir } from './support/backend.ts';
import { startSupervisedEngine } from './support/supervised-engine.ts';

const WAIT_MS = 300;

describeEmbedded("it tests the embedded engine's one backend", 'a socket session’s bounded wait for the backend', () => {
  let dataDir: string;
  let engine: EmbeddedEngine;

  beforeAll(async () => {
    dataDir = tempDataDir();
    engine = await startSupervisedEngine(dataDir, { purpose: 'test' });
    const setup = await connect();
    await setup.query('create table waited (v text)');
    await setup.end();
  });
  afterAll(async () => {
    await engine.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function connect(options?: string): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: engine.url(), ...(options ? { options } : {}) });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  /** Runs `fn` while another client holds the backend inside a transaction. */
  async function whileHeld<T>(fn: () => Promise<T>): Promise<T> {
    const holder = await connect();
    await holder.query('begin');
    await holder.query('select 1');
    try {
      return await fn();
    } finally {
      await holder.query('rollback');
      await holder.end();
    }
  }

  const UNITS: Array<[string, (c: pg.Client, i: number) => Promise<unknown>]> = [
    ['a simple query', (c, i) => c.query(`insert into waited values ('simple ${i}')`)],
    ['an extended-protocol query', (c, i) => c.query('insert into waited values ($1)', [`extended ${i}`])],
    ['a named statement', (c, i) => c.query({ name: 'waited_insert', text: 'insert into waited values ($1)', values: [`named ${i}`] })],
  ];

  test.each(UNITS)('%s waits at most the bound, fails with SB000 having run nothing, and the connection goes on', async (_name, unit) => {
    const client = await connect(`-c sheratan.backend_wait_ms=${WAIT_MS}`);
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const err = (await whileHeld(() =>
        unit(client, i).then(
          () => null,
          (e: unknown) => e,
        ),
      )) as (Error & { code?: string }) | null;
      expect(err).toMatchObject({
        code: 'SB000',
        message: expect.stringMatching(/one backend stayed held by another client .* for 300 ms \(sheratan\.backend_wait_ms/),
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(WAIT_MS - 20);
      // The same connection answers at once once the backend is free, and what it was refused is not there.
      await unit(client, 100 + i);
    }
    const { rows } = await client.query<{ v: string }>('select v from waited where v !~ $1 order by v', [' 10[0-9]$']);
    expect(rows).toEqual([]);
    await client.query('delete from waited');
    await client.end();
  });

  test('logging in needs the backend too: a login with the setting is refused with SB000 after the bound, and one after the holder is done succeeds', async () => {
    const started = Date.now();
    const refused = await whileHeld(() =>
      connect(`-c sheratan.backend_wait_ms=${WAIT_MS}`).then(
        () => null,
        (e: unknown) => e,
      ),
    );
    expect(refused).toMatchObject({ code: 'SB000', message: expect.stringMatching(/one backend stayed held by another client/) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(WAIT_MS - 20);
    const client = await connect(`-c sheratan.backend_wait_ms=${WAIT_MS}`);
    expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    await client.end();
  });

  test('without the setting a session waits for the backend as long as it takes', async () => {
    const client = await connect();
    const holder = await connect();
    await holder.query('begin');
    await holder.query('select 1');
    const waiting = client.query("insert into waited values ('patient')");
    await new Promise((r) => setTimeout(r, WAIT_MS * 2));
    await holder.query('commit');
    await waiting;
    expect((await client.query("select count(*)::int as n from waited where v = 'patient'")).rows[0].n).toBe(1);
    await client.query('delete from waited');
    await Promise.all([client.end(), holder.end()]);
  });

  test.each(['0', '-5', 'soon', '1.5', '9999999999'])('a bad value (%s) is refused at login, naming the setting', async (value) => {
    await expect(connect(`-c sheratan.backend_wait_ms=${value}`)).rejects.toMatchObject({
      code: '22023',
      message: expect.stringContaining('invalid value for parameter "sheratan.backend_wait_ms"'),
    });
  });
});

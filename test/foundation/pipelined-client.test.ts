// The gateway's pipelined client, over each transport it has: the embedded
// engine's in-process channel, and a pool's connections (to a server, or to
// the engine's listener). The same results, errors and role discipline as a
// node-postgres connection, with the settings and the query in one implicit
// transaction.
import pg from 'pg';
import type { PgClient, WithPgClient } from 'postgraphile/@dataplan/pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { makePipelinedWithPgClient, poolTransport } from '../../src/graphql/pipelined-client.ts';
import { AUTHENTICATOR_ROLE } from '../../src/database/connect.ts';
import { describeEmbedded } from '../support/backend.ts';

function transportTests(transport: 'channel' | 'pool'): void {
  let h: Harness;
  let withPgClient: WithPgClient<PgClient>;
  let owner: pg.Client;
  let pool: pg.Pool | undefined;

  const APP = { role: 'sheratan_app', 'jwt.claims.tenant': 'acme', 'jwt.claims.sub': 'alice' };

  beforeAll(async () => {
    // The channel lives in the process that runs the engine: the default's worker thread.
    h = await startHarness({ EMBEDDED_ENGINE: 'thread' });
    owner = await h.owner();
    if (transport === 'channel') {
      withPgClient = makePipelinedWithPgClient(h.gateway.db.engine!.transport!(AUTHENTICATOR_ROLE));
    } else {
      pool = new pg.Pool({ connectionString: h.gateway.db.authUrl, max: 4 });
      withPgClient = makePipelinedWithPgClient(poolTransport(pool));
    }
  });
  afterAll(async () => {
    await pool?.end();
    await h.stop();
  });

  const one = <T>(settings: Record<string, string> | null, text: string, values?: unknown[]) =>
    withPgClient(settings, (c) => c.query<T>({ text, ...(values ? { values } : {}) }));

  test('the request runs as the role and claims it names, and nothing carries over to the next one', async () => {
    const as = await one<{ who: string; tenant: string }>(APP, "select current_user as who, current_setting('jwt.claims.tenant', true) as tenant");
    expect(as.rows).toEqual([{ who: 'sheratan_app', tenant: 'acme' }]);
    const after = await one<{ who: string; tenant: string | null }>(
      null,
      "select current_user as who, nullif(current_setting('jwt.claims.tenant', true), '') as tenant",
    );
    expect(after.rows).toEqual([{ who: AUTHENTICATOR_ROLE, tenant: null }]);
  });

  test('without a role it is the authenticator, which may read nothing', async () => {
    await expect(one(null, 'select count(*) from sheratan.documents')).rejects.toMatchObject({ code: '42501' });
  });

  test('values come back exactly as node-postgres returns them', async () => {
    const text = `select 1::int as i, 2::bigint as b, 1.5::float8 as f, true as t, null::text as n,
      '{"a":[1]}'::jsonb as j, '2026-01-02T03:04:05Z'::timestamptz as ts, array[1,2]::int[] as arr, 'x' as s, $1::text as p`;
    const viaChannel = await one<Record<string, unknown>>(APP, text, ['param']);
    const viaPg = await owner.query(text, ['param']);
    expect(viaChannel.rows).toEqual(viaPg.rows);
    const arrays = await withPgClient(APP, (c) => c.query<unknown[]>({ text: 'select 1 as a, 2 as b', arrayMode: true }));
    expect(arrays.rows).toEqual([[1, 2]]);
  });

  test('errors arrive as Postgres errors with their SQLSTATE; a role the authenticator may not become is refused', async () => {
    await expect(one(APP, 'select 1 / 0')).rejects.toMatchObject({ code: '22012', message: 'division by zero' });
    await expect(one({ role: 'sheratan' }, 'select 1')).rejects.toMatchObject({ code: '42501' });
  });

  test('a failing statement stores nothing; an explicit transaction commits or rolls back as a whole', async () => {
    const count = async () => Number((await owner.query("select count(*) from sheratan.documents where title like 'channel %'")).rows[0].count);
    await expect(one(APP, "insert into sheratan.documents (title) values ('channel 1'), (null)")).rejects.toMatchObject({ code: '23502' });
    expect(await count()).toBe(0);

    await expect(
      withPgClient(APP, (c) =>
        c.withTransaction(async (tx) => {
          await tx.query({ text: "insert into sheratan.documents (title) values ('channel 2')" });
          throw new Error('changed my mind');
        }),
      ),
    ).rejects.toThrow('changed my mind');
    expect(await count()).toBe(0);

    await withPgClient(APP, (c) =>
      c.withTransaction(async (tx) => {
        await tx.query({ text: "insert into sheratan.documents (title) values ('channel 3')" });
        await tx
          .withTransaction(async (inner) => {
            await inner.query({ text: "insert into sheratan.documents (title) values ('channel 4')" });
            throw new Error('only the inner part');
          })
          .catch(() => undefined);
        // Still the request's role and claims inside the transaction.
        expect((await tx.query<{ who: string }>({ text: 'select current_user as who' })).rows).toEqual([{ who: 'sheratan_app' }]);
      }),
    );
    expect((await owner.query("select title, tenant from sheratan.documents where title like 'channel %'")).rows).toEqual([
      { title: 'channel 3', tenant: 'acme' },
    ]);
  });

  test('concurrent requests each see only their own tenant', async () => {
    const tenants = Array.from({ length: 8 }, (_, i) => `t${i}`);
    const seen = await Promise.all(
      tenants.map((tenant) =>
        withPgClient({ ...APP, 'jwt.claims.tenant': tenant }, async (c) => {
          await c.query({ text: 'select pg_sleep(0.01)' });
          return (await c.query<{ t: string }>({ text: "select current_setting('jwt.claims.tenant') as t" })).rows[0]!.t;
        }),
      ),
    );
    expect(seen).toEqual(tenants);
  });

  test('named queries are prepared once per session and then reused, alongside the settings statement', async () => {
    const run = (name: string, text: string, tenant: string) =>
      withPgClient({ ...APP, 'jwt.claims.tenant': tenant }, (c) => c.query<{ v: string }>({ name, text }));
    for (let i = 0; i < 3; i++) {
      expect((await run('first', "select current_setting('jwt.claims.tenant') || ' one' as v", `a${i}`)).rows).toEqual([{ v: `a${i} one` }]);
      expect((await run('second', "select current_setting('jwt.claims.tenant') || ' two' as v", `b${i}`)).rows).toEqual([{ v: `b${i} two` }]);
    }
    const concurrent = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        run(i % 2 ? 'first' : 'second', `select '${i % 2 ? 'one' : 'two'}' || current_setting('jwt.claims.tenant') as v`, `c${i}`),
      ),
    );
    expect(concurrent.map((r) => r.rows[0]!.v)).toEqual(['twoc0', 'onec1', 'twoc2', 'onec3', 'twoc4', 'onec5']);
  });
}

const about = (transport: string) => `the gateway's pipelined client over the ${transport} transport`;
describeEmbedded("the channel is the embedded engine's in-process transport; a server is reached only over connections", about('channel'), () =>
  transportTests('channel'),
);
describe(about('pool'), () => transportTests('pool'));

// Each of doctor's checks (src/operations/doctor/, DOCTOR_CHECKS) on its own,
// on a real database: one test per check, named after it, that makes it pass
// and makes it fail (or warn). The broken states are made in a transaction
// rolled back after (withRootDb: the owner's; on a server, the superuser's
// where only a superuser may break it), so that nothing else sees them; the
// migrations check, which graphile-migrate runs on its own connection, breaks
// and restores this file's own database. The last test holds this file to a
// test per check. Doctor as a whole and as the CLI: doctor.test.ts.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { freePort } from '../support/processes.ts';
import { backend } from '../support/backend.ts';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { withPgClient, type Database } from '../../src/database/connect.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { APP_ROLE, AUTHENTICATOR_ROLE } from '../../src/config/roles.ts';
import { DOCTOR_CHECKS, runDoctor, INDEX_USAGE_SQL, type Check, type DoctorCheck } from '../../src/operations/doctor.ts';
import { doctorContext } from '../../src/operations/doctor/types.ts';
import { connection } from '../../src/operations/doctor/connection.ts';
import { poolSettings, ssl } from '../../src/operations/doctor/connection.ts';
import { readReplica } from '../../src/operations/doctor/replica.ts';
import { serverVersion, serverVersionResult, vectorExtension } from '../../src/operations/doctor/server.ts';
import { cascadeForeignKey, tables, TABLES } from '../../src/operations/doctor/schema.ts';
import { embeddingDimension, embeddingModelSwitch, embeddingProvider } from '../../src/operations/doctor/embedding.ts';
import { annIndex, annIndexKind, indexes, indexUsage, INDEXES } from '../../src/operations/doctor/indexes.ts';
import { rolesGrantsAndRls } from '../../src/operations/doctor/security.ts';
import { migrations } from '../../src/operations/doctor/migrations.ts';

let h: Harness;
let server: OpenAiServer;
let owner: pg.Client;
beforeAll(async () => {
  [h, server] = await Promise.all([startHarness(), startOpenAiServer()]); // the harness: EMBEDDING_PROVIDER=none, vector(384)
  owner = await h.owner();
});
afterAll(() => Promise.all([h?.stop(), server?.stop()]));

/** The lines `check` prints on `client` (the owner's, or a transaction's), with this file's configuration unless given another. */
const run = async (check: DoctorCheck, client: pg.Client, config: Config = h.config, db: Database = h.gateway.db): Promise<Check[]> =>
  [await (check.afterConnection ? check.run({ config, db }) : check.run(doctorContext(client, config, db)))].flat();

/**
 * On a server, `fn` in a transaction of the superuser's, rolled back after:
 * what only a superuser may break (the extension, role attributes). The
 * embedded engine's owner is its superuser: there, withRootDb.
 */
const withSuperuserDb = <T>(fn: (client: pg.Client) => Promise<T>): Promise<T> =>
  backend === 'embedded'
    ? h.withRootDb(fn)
    : withPgClient(h.database.superuserUrl!, async (client) => {
        await client.query('begin');
        try {
          return await fn(client);
        } finally {
          await client.query('rollback');
        }
      });

const FK_FIX =
  'ALTER TABLE sheratan.document_chunks ADD CONSTRAINT document_chunks_document_id_fkey FOREIGN KEY (document_id) REFERENCES sheratan.documents (id) ON DELETE CASCADE;';
const ROLES_FIX = 'npm run db:migrate (it recreates the roles from migrations/afterReset.sql); in development npm run db:reset -- --erase';

test('connection: made, it is ✓ saying where; not made (nothing listens on the port), doctor prints only ✗ connection with the error and the fix', async () => {
  expect(await run(connection, owner)).toEqual([
    {
      name: 'connection',
      status: 'ok',
      detail: backend === 'embedded' ? `embedded database in ${h.config.dataDir}` : 'connected with DATABASE_URL',
    },
  ]);
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const url = new URL(h.gateway.db.ownerUrl.startsWith('postgres') ? h.gateway.db.ownerUrl : 'postgresql://x@127.0.0.1/x');
  url.hostname = '127.0.0.1';
  url.port = String(port);
  expect(await runDoctor(h.config, { ...h.gateway.db, ownerUrl: url.toString() })).toEqual([
    {
      name: 'connection',
      status: 'fail',
      detail: `connect ECONNREFUSED 127.0.0.1:${port}`,
      fix: 'check DATABASE_URL and that PostgreSQL is running and reachable',
    },
  ]);
});

test('server version: this server is ✓ naming its version; one older than PostgreSQL 14 is ✗ with the fix', async () => {
  const { v } = (await owner.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]!;
  expect(await run(serverVersion, owner)).toEqual([
    { name: 'server version', status: 'ok', detail: `PostgreSQL ${v}${backend === 'embedded' ? ' (embedded PGlite)' : ''}` },
  ]);
  // No server here is older than 14: the line for what a PostgreSQL 13 reports.
  expect(serverVersionResult('13.16', 130016, false)).toEqual({
    name: 'server version',
    status: 'fail',
    detail: 'PostgreSQL 13.16',
    fix: 'Sheratan needs PostgreSQL 14 or newer (16 is the production target)',
  });
});

test('vector extension: created is ✓ vector extension version naming it; dropped, ✗ vector extension installed with npm run db:migrate', async () => {
  const { extversion } = (await owner.query<{ extversion: string }>("select extversion from pg_extension where extname = 'vector'")).rows[0]!;
  expect(await run(vectorExtension, owner)).toEqual([
    { name: 'vector extension version', status: 'ok', detail: `pgvector ${extversion} (HNSW and iterative index scans)` },
  ]);
  await withSuperuserDb(async (client) => {
    const { available } = (await client.query<{ available: string }>("select default_version as available from pg_available_extensions where name = 'vector'"))
      .rows[0]!;
    await client.query('drop extension vector cascade');
    expect(await run(vectorExtension, client)).toEqual([
      {
        name: 'vector extension installed',
        status: 'fail',
        detail: `pgvector ${available} is available but not created in this database`,
        fix: 'npm run db:migrate (it runs CREATE EXTENSION vector)',
      },
    ]);
  });
});

test('tables: all six are ✓; a dropped one is ✗ naming it, with npm run db:migrate', async () => {
  expect(await run(tables, owner)).toEqual([{ name: 'tables', status: 'ok', detail: TABLES.join(', ') }]);
  await h.withRootDb(async (client) => {
    await client.query('drop table sheratan.search_logs cascade');
    expect(await run(tables, client)).toEqual([{ name: 'tables', status: 'fail', detail: 'missing: search_logs', fix: 'npm run db:migrate' }]);
  });
});

test('embedding dimension: vector(384) = VECTOR_DIMENSION is ✓; VECTOR_DIMENSION 768 is ✗ with both ways out; no column is ✗ with npm run db:migrate', async () => {
  expect(await run(embeddingDimension, owner)).toEqual([{ name: 'embedding dimension', status: 'ok', detail: 'vector(384) = VECTOR_DIMENSION' }]);
  expect(await run(embeddingDimension, owner, { ...h.config, vectorDimension: 768 })).toEqual([
    {
      name: 'embedding dimension',
      status: 'fail',
      detail: 'VECTOR_DIMENSION is 768 but the column is vector(384): inserts fail with "expected 384 dimensions, not 768"',
      fix:
        "set VECTOR_DIMENSION=384 to match the column (after an embedding model switch, the new model's dimension); " +
        'to change the model, npm run embeddings:migrate -- --dimension 768 --name <model> (README, "Changing the embedding model")',
    },
  ]);
  await h.withRootDb(async (client) => {
    await client.query('alter table sheratan.document_chunks drop column embedding cascade');
    expect(await run(embeddingDimension, client)).toEqual([
      { name: 'embedding dimension', status: 'fail', detail: 'sheratan.document_chunks.embedding does not exist', fix: 'npm run db:migrate' },
    ]);
  });
});

describe('embedding provider', () => {
  const withEnv = (env: Record<string, string>): Config => ({ ...h.config, ...parseConfig({ ...h.database.env, ...env }), dataDir: h.config.dataDir });
  beforeEach(() => server.setFault({}));

  test('embedding provider: ✓ with none, and with an openai provider that answers the column’s 384; nothing without the column', async () => {
    expect(await run(embeddingProvider, owner)).toEqual([
      {
        name: 'embedding provider',
        status: 'ok',
        detail: 'EMBEDDING_PROVIDER=none: clients bring their own vectors of 384 numbers; ingest and search by text are off',
      },
    ]);
    const ok = await run(
      embeddingProvider,
      owner,
      withEnv({ EMBEDDING_PROVIDER: 'openai', EMBEDDING_BASE_URL: server.url, EMBEDDING_MODEL: 'text-embedding-3-small', EMBEDDING_DIMENSIONS: '384' }),
    );
    expect(ok).toMatchObject([{ status: 'ok', detail: expect.stringMatching(/^openai:text-embedding-3-small answers 384 numbers = vector\(384\)/) }]);
    await h.withRootDb(async (client) => {
      await client.query('alter table sheratan.document_chunks drop column embedding cascade');
      expect(await run(embeddingProvider, client)).toEqual([]);
    });
  });

  test('embedding provider: ✗ naming both numbers: local (512) against vector(384), and a provider answering one number short', async () => {
    const bad = await run(embeddingProvider, owner, { ...h.config, embeddingProvider: 'local', embeddingModel: 'use-lite-512', vectorDimension: 512 });
    expect(bad).toMatchObject([
      {
        status: 'fail',
        detail: expect.stringMatching(/answers 512 numbers .* is vector\(384\)/),
        fix: expect.stringMatching(/EMBEDDING_PROVIDER=none/),
      },
    ]);
    await server.setFault({ wrongDimension: true });
    const wrong = await run(
      embeddingProvider,
      owner,
      withEnv({ EMBEDDING_PROVIDER: 'openai', EMBEDDING_BASE_URL: server.url, EMBEDDING_MODEL: 'm', EMBEDDING_DIMENSIONS: '384', EMBEDDING_MAX_RETRIES: '0' }),
    );
    expect(wrong).toMatchObject([{ status: 'fail', detail: expect.stringMatching(/answered 383 numbers for text 0 but the column holds 384/) }]);
  });
});

test('embedding model switch: nothing without a switch; one started is ! with its progress and the next step', async () => {
  expect(await run(embeddingModelSwitch, owner)).toEqual([]);
  await h.withRootDb(async (client) => {
    // A fresh store records no model until the first switch: the live one is named here.
    await client.query("select sheratan_private.start_embedding_migration('doctor-probe', 512, 'doctor-live')");
    expect(await run(embeddingModelSwitch, client)).toEqual([
      {
        name: 'embedding model switch',
        status: 'warn',
        detail: 'migrating to doctor-probe (vector(512)): 0 of 0 chunks have its embedding, 0 to go; searches use the live embedding',
        fix: 'every chunk has its new embedding: npm run embeddings:migrate -- --switch',
      },
    ]);
  });
});

test('indexes: all fourteen are ✓; a missing one is ✗ naming it (a new migration), the ANN index with index:tune', async () => {
  expect(await run(indexes, owner)).toEqual([{ name: 'indexes', status: 'ok', detail: `${INDEXES.length} expected indexes present` }]);
  expect(INDEXES.length).toBe(14);
  await h.withRootDb(async (client) => {
    await client.query('drop index sheratan.jobs_status_idx');
    expect(await run(indexes, client)).toEqual([
      {
        name: 'indexes',
        status: 'fail',
        detail: 'missing: jobs_status_idx',
        fix: 'recreate them in a new migration (see migrations/committed for their definitions)',
      },
    ]);
    await client.query('drop index sheratan.document_chunks_embedding_idx');
    expect(await run(indexes, client)).toEqual([
      {
        name: 'indexes',
        status: 'fail',
        detail: 'missing: document_chunks_embedding_idx, jobs_status_idx',
        fix: 'recreate the ANN index: npm run index:tune -- --hnsw (or create index document_chunks_embedding_idx on sheratan.document_chunks using hnsw (embedding vector_cosine_ops)); for the others, npm run db:reset in development or a new migration',
      },
    ]);
  });
});

test('ANN index kind: nothing when the index is the kind VECTOR_INDEX names; another kind is ! with both ways out', async () => {
  expect(await run(annIndexKind, owner)).toEqual([]);
  expect(await run(annIndexKind, owner, { ...h.config, vectorIndex: 'ivfflat' })).toEqual([
    {
      name: 'ANN index kind',
      status: 'warn',
      detail: 'VECTOR_INDEX is ivfflat (hnsw when unset) but the index is hnsw (it is built as VECTOR_INDEX says only while the table has no embeddings)',
      fix: 'to keep this index, set VECTOR_INDEX=hnsw (in .env or the environment); to follow VECTOR_INDEX instead: npm run index:tune -- --kind ivfflat',
    },
  ]);
});

test('ANN index: HNSW is ✓ with its scans; an index of that name that cannot serve nearest-neighbour searches is ✗ with index:tune; none, nothing', async () => {
  expect(await run(annIndex, owner)).toMatchObject([
    {
      name: 'ANN index',
      status: 'ok',
      detail: expect.stringMatching(/^document_chunks_embedding_idx uses hnsw; \d+ index scans since statistics were reset \(pg_stat_user_indexes\)$/),
    },
  ]);
  await h.withRootDb(async (client) => {
    await client.query('drop index sheratan.document_chunks_embedding_idx');
    expect(await run(annIndex, client)).toEqual([]);
    await client.query('create index document_chunks_embedding_idx on sheratan.document_chunks (id)');
    expect(await run(annIndex, client)).toEqual([
      {
        name: 'ANN index',
        status: 'fail',
        detail: 'document_chunks_embedding_idx uses btree; 0 index scans since statistics were reset (pg_stat_user_indexes)',
        fix: 'npm run index:tune -- --hnsw',
      },
    ]);
  });
});

test('index usage: never fails; counts the indexes, names the first five not scanned, and prints the corrected monitoring query', async () => {
  await h.withRootDb(async (client) => {
    const before = (await client.query(INDEX_USAGE_SQL)).rows.length;
    await client.query('create index aaa_doctor_probe_idx on sheratan.jobs (created_at)');
    const [usage] = await run(indexUsage, client);
    expect(usage).toMatchObject({ name: 'index usage', status: 'ok' });
    expect(usage!.detail).toMatch(
      new RegExp(`^${before + 1} indexes in schema sheratan, \\d+ not scanned since statistics were reset \\(aaa_doctor_probe_idx, `),
    );
    expect(usage!.detail.endsWith(`; the seed guide's monitoring query, corrected: ${INDEX_USAGE_SQL}`)).toBe(true);
  });
});

test('cascade foreign key: ON DELETE CASCADE is ✓; none, or one without CASCADE, is ✗, and the printed ALTER TABLE repairs it', async () => {
  const ok = {
    name: 'cascade foreign key',
    status: 'ok',
    detail: 'document_chunks_document_id_fkey: document_chunks.document_id → documents ON DELETE CASCADE',
  };
  expect(await run(cascadeForeignKey, owner)).toEqual([ok]);
  await h.withRootDb(async (client) => {
    await client.query('alter table sheratan.document_chunks drop constraint document_chunks_document_id_fkey');
    expect(await run(cascadeForeignKey, client)).toEqual([
      { name: 'cascade foreign key', status: 'fail', detail: 'document_chunks.document_id has no foreign key to documents', fix: FK_FIX },
    ]);
    await client.query('alter table sheratan.document_chunks add constraint chunks_doc_fk foreign key (document_id) references sheratan.documents (id)');
    const [plain] = await run(cascadeForeignKey, client);
    expect(plain).toEqual({
      name: 'cascade foreign key',
      status: 'fail',
      detail: 'chunks_doc_fk exists without ON DELETE CASCADE: deleting a document with chunks fails',
      fix: `ALTER TABLE sheratan.document_chunks DROP CONSTRAINT chunks_doc_fk; ${FK_FIX}`,
    });
    await client.query(plain!.fix!);
    expect(await run(cascadeForeignKey, client)).toEqual([ok]);
  });
});

test('roles, grants and row-level security: as migrated is ✓; RLS off on a table, or the grants changed, is ✗ naming it', async () => {
  expect(await run(rolesGrantsAndRls, owner)).toEqual([
    {
      name: 'roles, grants and row-level security',
      status: 'ok',
      detail: 'API roles exist without BYPASSRLS, the authenticator is NOINHERIT, RLS is on every table in sheratan',
    },
  ]);
  await h.withRootDb(async (client) => {
    await client.query('alter table sheratan.search_logs disable row level security');
    expect(await run(rolesGrantsAndRls, client)).toEqual([
      { name: 'roles, grants and row-level security', status: 'fail', detail: 'row-level security is off on search_logs', fix: ROLES_FIX },
    ]);
  });
  await h.withRootDb(async (client) => {
    await client.query(`revoke select on sheratan.documents from ${client.escapeIdentifier(APP_ROLE)}`);
    expect(await run(rolesGrantsAndRls, client)).toEqual([
      {
        name: 'roles, grants and row-level security',
        status: 'fail',
        detail: 'grants on sheratan.documents are not as the migrations set them',
        fix: ROLES_FIX,
      },
    ]);
  });
});

test('roles, grants and row-level security: an API role with BYPASSRLS, and an authenticator that inherits, are ✗ naming them', async () => {
  await withSuperuserDb(async (client) => {
    await client.query(`alter role ${client.escapeIdentifier(APP_ROLE)} bypassrls`);
    await client.query(`alter role ${client.escapeIdentifier(AUTHENTICATOR_ROLE)} inherit`);
    expect(await run(rolesGrantsAndRls, client)).toEqual([
      {
        name: 'roles, grants and row-level security',
        status: 'fail',
        detail: `${APP_ROLE} can bypass row-level security; ${AUTHENTICATOR_ROLE} must be LOGIN NOINHERIT`,
        fix: ROLES_FIX,
      },
    ]);
  });
});

test('pool settings: DB_POOL_SIZE + DB_MAX_OVERFLOW below max_connections is ✓ showing both and the sum; not below it is ! with the fix', async () => {
  const max = Number((await owner.query<{ m: string }>("select current_setting('max_connections') as m")).rows[0]!.m);
  expect(max).toBeGreaterThan(8);
  expect(await run(poolSettings, owner, { ...h.config, poolSize: 3, poolMaxOverflow: 4 })).toEqual([
    { name: 'pool settings', status: 'ok', detail: `pool max 7 (DB_POOL_SIZE 3 + DB_MAX_OVERFLOW 4) per gateway; server max_connections ${max}` },
  ]);
  expect(await run(poolSettings, owner, { ...h.config, poolSize: max - 1, poolMaxOverflow: 1 })).toEqual([
    {
      name: 'pool settings',
      status: 'warn',
      detail: `pool max ${max} per gateway is not below the server's max_connections ${max}: connections will be refused`,
      fix: `lower DB_POOL_SIZE/DB_MAX_OVERFLOW so that (gateways × ${max}) stays below max_connections, or raise max_connections`,
    },
  ]);
});

const withSslMode = (url: string, mode: string): string => {
  const u = new URL(url);
  u.searchParams.set('sslmode', mode);
  return u.toString();
};

test('SSL: nothing when DATABASE_URL does not ask for an encrypted connection', async () => {
  expect(await run(ssl, owner)).toEqual([]);
  expect(await run(ssl, owner, h.config, { ...h.gateway.db, ownerUrl: withSslMode(h.gateway.db.ownerUrl, 'prefer') })).toEqual([]);
});

// As a server is reached: through DATABASE_URL (embedded, the engine's listener, as doctor-ssl.test.ts does), here
// asking for verify-full while this connection (made without sslmode) is not encrypted. (A connection made with
// sslmode=require to a server without SSL is refused before any check runs: doctor-ssl.test.ts.)
test('SSL: a connection that is not encrypted while DATABASE_URL asks for sslmode=verify-full is ✗ naming that sslmode', async () => {
  const url = backend === 'server' ? h.gateway.db.ownerUrl : h.gateway.db.engine!.url();
  expect(await run(ssl, owner, h.config, { ...h.gateway.db, backend: 'server', ownerUrl: withSslMode(url, 'verify-full') })).toEqual([
    {
      name: 'SSL',
      status: 'fail',
      detail: 'sslmode=verify-full but the connection is not encrypted',
      fix: 'enable ssl on the server (ssl = on with a certificate)',
    },
  ]);
});

// A standby's ✓ line, with its lag, needs a real replica: reliability/read-replica.test.ts.
test('read replica: nothing without READ_DATABASE_URL; at a primary it is ⚠ not a standby; at nothing listening it is ✗ with the error', async () => {
  expect(await run(readReplica, owner)).toEqual([]);
  const at = (url: string): Promise<Check[]> => run(readReplica, owner, { ...h.config, readDatabaseUrl: url }, { ...h.gateway.db, readUrl: url });
  expect(await at(h.gateway.db.authUrl)).toEqual([
    {
      name: 'read replica',
      status: 'warn',
      detail: 'READ_DATABASE_URL is not a standby (pg_is_in_recovery() is false): the reporting endpoint reads a primary',
      fix: 'point READ_DATABASE_URL at a streaming replica (pg_basebackup -R), or unset it',
    },
  ]);
  const nowhere = new URL(h.gateway.db.authUrl);
  nowhere.hostname = '127.0.0.1';
  nowhere.port = String(await freePort());
  expect(await at(nowhere.toString())).toEqual([
    {
      name: 'read replica',
      status: 'fail',
      detail: expect.stringMatching(/^READ_DATABASE_URL: .*ECONNREFUSED/),
      fix: 'check READ_DATABASE_URL and that the replica runs; meanwhile /reporting/graphql answers DATABASE_UNAVAILABLE',
    },
  ]);
});

test('migrations: all applied is ✓; the last one unrecorded is ✗ naming it, with npm run db:migrate', async () => {
  expect(await run(migrations, owner)).toEqual([{ name: 'migrations', status: 'ok', detail: 'all committed migrations applied' }]);
  // graphile-migrate reads its own connection: the record is removed from this file's database, and put back.
  const last = (await owner.query('delete from graphile_migrate.migrations where date = (select max(date) from graphile_migrate.migrations) returning *')).rows;
  try {
    expect(last.length).toBe(1);
    expect(await run(migrations, owner)).toEqual([
      { name: 'migrations', status: 'fail', detail: `1 committed migration(s) not applied: ${last[0].filename}`, fix: 'npm run db:migrate' },
    ]);
  } finally {
    for (const row of last) {
      const columns = Object.keys(row);
      await owner.query(
        `insert into graphile_migrate.migrations (${columns.map((c) => owner.escapeIdentifier(c)).join(', ')}) values (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
        Object.values(row),
      );
    }
  }
  expect(await run(migrations, owner)).toEqual([{ name: 'migrations', status: 'ok', detail: 'all committed migrations applied' }]);
});

test('every check in DOCTOR_CHECKS has a test in this file named after it; the list is in doctor’s order', () => {
  const source = readFileSync(path.join(projectRoot, 'test/operations/doctor-checks.test.ts'), 'utf8');
  const untested = DOCTOR_CHECKS.map((c) => c.name).filter((name) => !source.includes(`'${name}: `));
  expect(untested).toEqual([]);
  expect(DOCTOR_CHECKS.map((c) => c.name)).toEqual([
    'connection',
    'server version',
    'vector extension',
    'tables',
    'embedding dimension',
    'embedding provider',
    'embedding model switch',
    'indexes',
    'ANN index kind',
    'ANN index',
    'index usage',
    'cascade foreign key',
    'roles, grants and row-level security',
    'pool settings',
    'SSL',
    'read replica',
    'migrations',
  ]);
});

// npm run doctor: healthy, and broken the ways the seed guide's troubleshooting describes.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { backend, createTestDatabase } from '../support/backend.ts';
import { runDoctor, type Check } from '../../src/operations/doctor.ts';
import { rebuildAnnIndex } from '../../src/database/ann-index.ts';
import { projectRoot } from '../../src/config/paths.ts';

let h: Harness;
let owner: pg.Client;
beforeAll(async () => {
  h = await startHarness();
  owner = await h.owner();
});
afterAll(() => h.stop());

const check = (checks: Check[], name: string): Check => checks.find((c) => c.name === name)!;

test('a healthy database passes every check; the CLI attaches to the running gateway, exits 0 and speaks JSON', async () => {
  const checks = await runDoctor(h.config, h.gateway.db);
  expect(checks.filter((c) => c.status !== 'ok')).toEqual([]);
  expect(checks.map((c) => c.name)).toEqual(
    expect.arrayContaining([
      'connection',
      'server version',
      'vector extension version',
      'tables',
      'embedding dimension',
      'indexes',
      'ANN index',
      'cascade foreign key',
      'roles, grants and row-level security',
      'pool settings',
      'migrations',
    ]),
  );
  const cli = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'doctor', '--json'], {
    env: { ...process.env, ...h.cliEnv },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(cli.status).toBe(0);
  const report = JSON.parse(cli.stdout) as { ok: boolean; checks: Check[] };
  expect(report.ok).toBe(true);
  expect(check(report.checks, 'vector extension version')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^pgvector \d+\.\d+/) });
});

test('VECTOR_DIMENSION different from the column fails with both ways out', async () => {
  const checks = await runDoctor({ ...h.config, vectorDimension: 768 }, h.gateway.db);
  const dim = check(checks, 'embedding dimension');
  expect(dim.status).toBe('fail');
  expect(dim.detail).toMatch(/expected 384 dimensions, not 768/);
  expect(dim.fix).toMatch(/set VECTOR_DIMENSION=384/);
  expect(dim.fix).toMatch(/npm run embeddings:migrate -- --dimension 768 --name <model>/);
});

test('a dropped ANN index fails, with the command that rebuilds it', async () => {
  await owner.query('drop index sheratan.document_chunks_embedding_idx');
  try {
    const checks = await runDoctor(h.config, h.gateway.db);
    expect(check(checks, 'indexes')).toMatchObject({ status: 'fail', detail: 'missing: document_chunks_embedding_idx' });
    expect(check(checks, 'indexes').fix).toMatch(/npm run index:tune -- --hnsw/);
    const cli = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'doctor'], {
      env: { ...process.env, ...h.cliEnv },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(cli.status).toBe(1);
    expect(cli.stdout).toMatch(/✗ indexes: missing: document_chunks_embedding_idx/);
  } finally {
    await rebuildAnnIndex(owner, { method: 'hnsw', m: 16, efConstruction: 64 }, { concurrently: false, maintenanceWorkMem: '64MB' });
  }
  expect(check(await runDoctor(h.config, h.gateway.db), 'indexes').status).toBe('ok');
});

test('a missing CASCADE foreign key fails, and the printed ALTER TABLE repairs it', async () => {
  await owner.query('alter table sheratan.document_chunks drop constraint document_chunks_document_id_fkey');
  const broken = check(await runDoctor(h.config, h.gateway.db), 'cascade foreign key');
  expect(broken.status).toBe('fail');
  expect(broken.fix).toMatch(/^ALTER TABLE sheratan\.document_chunks ADD CONSTRAINT .* ON DELETE CASCADE;$/);
  await owner.query(broken.fix!);
  expect(check(await runDoctor(h.config, h.gateway.db), 'cascade foreign key').status).toBe('ok');
});

test('row-level security switched off is reported', async () => {
  await owner.query('alter table sheratan.search_logs disable row level security');
  try {
    const rls = check(await runDoctor(h.config, h.gateway.db), 'roles, grants and row-level security');
    expect(rls).toMatchObject({ status: 'fail', detail: expect.stringMatching(/row-level security is off on search_logs/) });
  } finally {
    await owner.query('alter table sheratan.search_logs enable row level security');
  }
});

test('an unmigrated database fails with the fix (embedded: with no gateway running, the CLI starts the engine itself)', async () => {
  const fresh = await createTestDatabase();
  try {
    const cli = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'doctor', '--json'], {
      env: { ...process.env, ...fresh.env, LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 90_000,
    });
    // (On a failure, the signal and stderr say what happened to the process.)
    expect({ status: cli.status, signal: cli.signal, ...(cli.status === 1 ? {} : { stderr: cli.stderr, error: String(cli.error ?? '') }) }).toEqual({
      status: 1,
      signal: null,
    });
    const report = JSON.parse(cli.stdout) as { ok: boolean; checks: Check[] };
    expect(report.ok).toBe(false);
    // On a server db:bootstrap has created the extension already; embedded, the first migration does.
    if (backend === 'embedded')
      expect(check(report.checks, 'vector extension installed')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/npm run db:migrate/) });
    else expect(check(report.checks, 'vector extension version')).toMatchObject({ status: 'ok' });
    expect(check(report.checks, 'tables')).toMatchObject({ status: 'fail', fix: 'npm run db:migrate' });
    expect(check(report.checks, 'migrations')).toMatchObject({ status: 'fail', fix: 'npm run db:migrate' });
  } finally {
    await fresh.drop();
  }
}, 120_000);

// ALTER ROLE … IN DATABASE … SET applies at login on both backends (the embedded engine's pg-cluster.ts openSession).
test('every check holds whatever the owner\'s search_path (with "$user", public the owner\'s schema name is not printed qualified)', async () => {
  const database = (await owner.query<{ db: string }>('select current_database() as db')).rows[0]!.db;
  // Per database, so that no other test file's connections see it.
  await owner.query(`alter role current_user in database ${owner.escapeIdentifier(database)} set search_path = "$user", public`);
  try {
    const shown = await (await h.owner()).query<{ search_path: string }>('show search_path');
    expect(shown.rows[0]!.search_path).toBe('"$user", public');
    expect((await runDoctor(h.config, h.gateway.db)).filter((c) => c.status !== 'ok')).toEqual([]);
  } finally {
    await owner.query(`alter role current_user in database ${owner.escapeIdentifier(database)} reset search_path`);
  }
});

test('pool settings: DB_POOL_SIZE + DB_MAX_OVERFLOW below max_connections shows both and the sum; not below it is a warning with the fix', async () => {
  const max = Number((await owner.query<{ m: string }>("select current_setting('max_connections') as m")).rows[0]!.m);
  expect(max).toBeGreaterThan(8);
  const below = check(await runDoctor({ ...h.config, poolSize: 3, poolMaxOverflow: 4 }, h.gateway.db), 'pool settings');
  expect(below).toEqual({
    name: 'pool settings',
    status: 'ok',
    detail: `pool max 7 (DB_POOL_SIZE 3 + DB_MAX_OVERFLOW 4) per gateway; server max_connections ${max}`,
  });
  const over = check(await runDoctor({ ...h.config, poolSize: max - 1, poolMaxOverflow: 1 }, h.gateway.db), 'pool settings');
  expect(over).toMatchObject({
    status: 'warn',
    detail: `pool max ${max} per gateway is not below the server's max_connections ${max}: connections will be refused`,
    fix: expect.stringMatching(/^lower DB_POOL_SIZE\/DB_MAX_OVERFLOW so that \(gateways × \d+\) stays below max_connections, or raise max_connections$/),
  });
});

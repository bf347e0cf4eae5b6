// npm run doctor as a whole (runDoctor walking DOCTOR_CHECKS, and the CLI): healthy, and broken the ways the seed guide's troubleshooting describes. Each check on its own: doctor-checks.test.ts.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { backend, createTestDatabase } from '../support/backend.ts';
import { DOCTOR_CHECKS, runDoctor, type Check, type DoctorCheck } from '../../src/operations/doctor.ts';
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
  // Doctor's order (DOCTOR_CHECKS); on a healthy store the model switch, ANN index kind and SSL checks say nothing.
  expect(checks.map((c) => c.name)).toEqual([
    'connection',
    'server version',
    'vector extension version',
    'tables',
    'embedding dimension',
    'embedding provider',
    'indexes',
    'ANN index',
    'index usage',
    'cascade foreign key',
    'roles, grants and row-level security',
    'pool settings',
    'migrations',
  ]);
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

test('the CLI prints a failed check as ✗ with its fix and exits 1 (a dropped ANN index; each check on its own: doctor-checks.test.ts)', async () => {
  await owner.query('drop index sheratan.document_chunks_embedding_idx');
  try {
    const cli = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'doctor'], {
      env: { ...process.env, ...h.cliEnv },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(cli.status).toBe(1);
    expect(cli.stdout).toMatch(/^✗ indexes: missing: document_chunks_embedding_idx\n {4}fix: recreate the ANN index: npm run index:tune -- --hnsw /m);
  } finally {
    await rebuildAnnIndex(owner, { method: 'hnsw', m: 16, efConstruction: 64 }, { concurrently: false, maintenanceWorkMem: '64MB' });
  }
  expect(check(await runDoctor(h.config, h.gateway.db), 'indexes').status).toBe('ok');
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

test("a check that throws ends the checks on doctor's connection with one ✗ checks line; those after the connection (migrations) still run", async () => {
  const divides: DoctorCheck = { name: 'divides', run: async ({ client }) => (await client.query('select 1 / 0')).rows };
  const checks = await runDoctor(h.config, h.gateway.db, [DOCTOR_CHECKS[0]!, divides, ...DOCTOR_CHECKS.slice(1)]);
  expect(checks.map(({ name, status }) => [name, status])).toEqual([
    ['connection', 'ok'],
    ['checks', 'fail'],
    ['migrations', 'ok'],
  ]);
  expect(checks[1]).toEqual({ name: 'checks', status: 'fail', detail: 'a check failed to run: division by zero' });
});

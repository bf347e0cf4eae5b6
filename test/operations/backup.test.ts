// backup / restore round trip, and BACKUP_BEFORE_MIGRATE.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import { openDatabase, withPgClient } from '../../src/database/connect.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { backend, createTestDatabase, TEST_ENGINE_ENV } from '../support/backend.ts';
import { randomUnit, rng } from '../support/embeddings.ts';

let h: Harness;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'sheratan-backup-'));
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const cli = (database: Record<string, string>, args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), ...args], {
    env: { ...process.env, ...database, LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });

const SNAPSHOT = `
  select json_build_object(
    'documents', (select json_agg(d order by d.id) from sheratan.documents d),
    'chunks', (select json_agg(json_build_object('id', c.id, 'document', c.document_id, 'i', c.chunk_index, 'embedding', c.embedding::text, 'metadata', c.metadata) order by c.id) from sheratan.document_chunks c),
    'jobs', (select json_agg(j order by j.id) from sheratan.jobs j),
    'audit', (select json_agg(a order by a.id) from sheratan.audit_logs a),
    'searches', (select json_agg(s order by s.id) from sheratan.search_logs s)
  ) as snapshot`;

test('a backup restored into an empty database gives back the same documents, embeddings, jobs and logs', async () => {
  const chunks = [0, 1, 2].map((i) => ({ content: `c${i}`, embedding: randomUnit(384, rng(i + 1)), metadata: { i } }));
  for (const title of ['first', 'second']) {
    const res = await h.graphql(
      'mutation ($c: [ChunkInput]!, $t: String!) { ingestDocument(input: { title: $t, source: "s", chunks: $c }) { clientMutationId } }',
      {
        variables: { c: chunks, t: title },
      },
    );
    expect(res.body.errors).toBeUndefined();
  }
  await h.graphql('query ($e: Vector!) { searchDocumentChunks(embedding: $e, queryText: "q") { distance } }', { variables: { e: chunks[0]!.embedding } });
  await h.graphql('mutation { enqueueJob(input: { jobType: "embed", payload: { x: 1 } }) { clientMutationId } }');
  const before = await withPgClient(h.ownerUrl, async (c) => (await c.query(SNAPSHOT)).rows[0].snapshot);
  expect(before.chunks).toHaveLength(6);
  expect(before.searches).toHaveLength(1);

  // The gateway is running: backup attaches to its engine.
  const file = path.join(scratch, 'roundtrip.sql');
  const dumped = cli(h.cliEnv, ['backup', '--out', file]);
  expect(dumped.stderr).toBe('');
  expect(dumped.status).toBe(0);
  expect(dumped.stdout).toMatch(/^wrote .*roundtrip\.sql \(\d+ bytes\)/);
  // It holds every tenant's data: only its owner may read it.
  expect(statSync(file).mode & 0o777).toBe(0o600);

  // A new, empty database (embedded: nothing runs on it, so restore starts its
  // own engine; server: bootstrapped, not migrated), restored by the owner.
  const empty = await createTestDatabase();
  try {
    const restored = cli(empty.env, ['restore', file]);
    expect(restored.status).toBe(0);
    expect(restored.stdout).toBe(`restored ${file}\n`);
    if (backend === 'embedded') {
      // The new data directory generated its own JWT secret: the old tokens would be refused, and restore says so.
      expect(restored.stderr).toMatch(
        /^note: the backup comes from a database whose tokens were signed with another JWT secret \(fingerprint [0-9a-f]{16}, here [0-9a-f]{16}\): tokens issued there are refused here\. To keep them, copy the old data directory's jwt-secret file over .*jwt-secret/,
      );
    } else {
      expect(restored.stderr).toBe(''); // the same JWT_SECRET on both sides
    }
    const db = await openDatabase(parseConfig({ ...empty.env, ...TEST_ENGINE_ENV }), { purpose: 'test', serve: true });
    try {
      await withPgClient(db.ownerUrl, async (c) => {
        expect((await c.query(SNAPSHOT)).rows[0].snapshot).toEqual(before);
        // Everything restored belongs to the owner that restored it.
        const strangers = await c.query(`
          select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname in ('sheratan', 'sheratan_private', 'graphile_migrate') and c.relowner <> (select oid from pg_roles where rolname = current_user)
          union all
          select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname in ('sheratan', 'sheratan_private') and p.proowner <> (select oid from pg_roles where rolname = current_user)`);
        expect(strangers.rows).toEqual([]);
      });
    } finally {
      await db.close();
    }
    // …and a restore refuses a database that is not empty.
    const again = cli(empty.env, ['restore', file]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/restore needs an empty database/);
  } finally {
    await empty.drop();
  }
});

test('BACKUP_BEFORE_MIGRATE=1 takes a backup before db:migrate applies anything', async () => {
  const fresh = await createTestDatabase();
  const backups = path.join(scratch, 'auto');
  try {
    const first = cli(fresh.env, ['db:migrate'], { BACKUP_BEFORE_MIGRATE: '1', BACKUP_DIR: backups });
    // How it ended, signal included (a rehearsal saw status null once: a child killed by a signal says which).
    expect(`status ${first.status}, signal: ${JSON.stringify(first.signal)}${first.status === 0 ? '' : `\n${first.stderr}`}`).toBe('status 0, signal: null');
    expect(first.stderr).toMatch(/BACKUP_BEFORE_MIGRATE: wrote .*sheratan-before-migrate-.*\.sql \(\d+ bytes\) before applying \d+ migration\(s\)/);
    expect(readdirSync(backups)).toHaveLength(1);
    // Nothing pending: no backup.
    const second = cli(fresh.env, ['db:migrate'], { BACKUP_BEFORE_MIGRATE: '1', BACKUP_DIR: backups });
    expect(second.status).toBe(0);
    expect(readdirSync(backups)).toHaveLength(1);
  } finally {
    await fresh.drop();
  }
  expect(existsSync(backups)).toBe(true);
}, 180_000);

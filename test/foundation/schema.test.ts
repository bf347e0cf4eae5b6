// Migrations from empty to head, and the seed guide's "Verifying the Setup" checks.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { projectRoot } from '../../src/config/paths.ts';
import { startDatabase, type TestDb } from '../support/database.ts';

let h: TestDb;
let db: pg.Client;

beforeAll(async () => {
  h = await startDatabase();
  db = await h.owner();
});
afterAll(() => h.close());

test('every committed migration has been applied', async () => {
  const { rows } = await db.query('select filename from graphile_migrate.migrations order by filename');
  // graphile-migrate records each committed file by its number.
  const committed = readdirSync(path.join(projectRoot, 'migrations/committed'))
    .filter((f) => f.endsWith('.sql'))
    .map((f) => `${f.slice(0, 6)}.sql`)
    .sort();
  expect(committed.length).toBeGreaterThanOrEqual(2);
  expect(rows.map((r) => r.filename)).toEqual(committed);
});

test('the six tables exist', async () => {
  const { rows } = await db.query("select table_name from information_schema.tables where table_schema = 'sheratan' order by table_name");
  expect(rows.map((r) => r.table_name)).toEqual(['audit_logs', 'document_chunks', 'documents', 'embedding_models', 'jobs', 'search_logs']);
});

test('the vector extension is installed', async () => {
  const { rows } = await db.query("select extversion from pg_extension where extname = 'vector'");
  expect(rows).toHaveLength(1);
  expect(rows[0].extversion).toMatch(/^0\.(5|6|7|8|9)\./);
});

test('embedding is vector(384)', async () => {
  const { rows } = await db.query(`
    select format_type(a.atttypid, a.atttypmod) as type
      from pg_attribute a
     where a.attrelid = 'sheratan.document_chunks'::regclass and a.attname = 'embedding'`);
  expect(rows).toEqual([{ type: 'vector(384)' }]);
});

test('the indexes of the seed guide exist, with HNSW on the embedding', async () => {
  const { rows } = await db.query(`
    select tablename, indexname, indexdef from pg_indexes where schemaname = 'sheratan' order by tablename, indexname`);
  const names = rows.map((r) => r.indexname);
  expect(names).toEqual(
    expect.arrayContaining([
      'documents_created_at_idx',
      'documents_tenant_source_idx',
      'document_chunks_document_id_idx',
      'document_chunks_embedding_idx',
      'document_chunks_document_id_chunk_index_key',
      'jobs_status_idx',
      'jobs_job_type_idx',
      'jobs_created_at_idx',
      'jobs_priority_idx',
      'audit_logs_created_at_idx',
      'audit_logs_event_type_idx',
      'audit_logs_user_id_idx',
      'audit_logs_resource_idx',
      'search_logs_created_at_idx',
    ]),
  );
  const ann = rows.find((r) => r.indexname === 'document_chunks_embedding_idx');
  expect(ann.indexdef).toMatch(/USING hnsw \(embedding vector_cosine_ops\)/);
});

test('chunks reference documents with ON DELETE CASCADE', async () => {
  const { rows } = await db.query(`
    select confrelid = 'sheratan.documents'::regclass as to_documents, confdeltype
      from pg_constraint where contype = 'f' and conrelid = 'sheratan.document_chunks'::regclass`);
  expect(rows).toEqual([{ to_documents: true, confdeltype: 'c' }]);
  await db.query('begin');
  await db.query("set local jwt.claims.tenant = 't'");
  const doc = await db.query("insert into sheratan.documents (tenant, title) values ('t', 'd') returning id");
  await db.query("insert into sheratan.document_chunks (tenant, document_id, chunk_index, content) values ('t', $1, 0, 'c')", [doc.rows[0].id]);
  await db.query('delete from sheratan.documents where id = $1', [doc.rows[0].id]);
  const left = await db.query('select count(*)::int as n from sheratan.document_chunks where document_id = $1', [doc.rows[0].id]);
  await db.query('rollback');
  expect(left.rows[0].n).toBe(0);
});

test('every table and column is documented', async () => {
  const { rows } = await db.query(`
    select c.relname, a.attname
      from pg_class c
      join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'sheratan'
      join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
     where c.relkind = 'r' and col_description(c.oid, a.attnum) is null`);
  expect(rows).toEqual([]);
  const tables = await db.query(`
    select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'sheratan' and c.relkind = 'r' and obj_description(c.oid, 'pg_class') is null`);
  expect(tables.rows).toEqual([]);
});

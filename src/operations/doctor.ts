// `npm run doctor`: the seed guide's "Verifying the Setup" and
// "Troubleshooting" sections as checks, each with the fix spelled out.
import * as gm from 'graphile-migrate';
import type pg from 'pg';
import type { Config } from '../config/config.ts';
import { withPgClient, type Database } from '../database/connect.ts';
import { APP_ROLE, AUTHENTICATOR_ROLE, DATABASE_ROLES, READONLY_ROLE } from '../config/roles.ts';
import { migrateSettings } from '../database/migrations.ts';
import { ANN_INDEX, describeAnnIndex, kindOf } from '../database/ann-index.ts';
import { embeddingModelStatus } from './embedding-models.ts';
import { embeddingColumns, pgvectorVersionProblem } from '../database/vector-column.ts';
import { checkEmbeddingProvider, ProviderCheckError } from '../embedding/check.ts';
import { createEmbeddingProvider } from '../embedding/provider.ts';

export type Status = 'ok' | 'warn' | 'fail';
export interface Check {
  name: string;
  status: Status;
  detail: string;
  fix?: string;
}

const TABLES = ['documents', 'document_chunks', 'jobs', 'audit_logs', 'search_logs', 'embedding_models'];
const INDEXES = [
  'documents_created_at_idx',
  'documents_tenant_source_idx',
  'document_chunks_document_id_idx',
  ANN_INDEX,
  'jobs_status_idx',
  'jobs_job_type_idx',
  'jobs_created_at_idx',
  'jobs_priority_idx',
  'jobs_claimable_idx',
  'audit_logs_created_at_idx',
  'audit_logs_event_type_idx',
  'audit_logs_user_id_idx',
  'audit_logs_resource_idx',
  'search_logs_created_at_idx',
];

async function catalogChecks(client: pg.Client, config: Config, db: Database): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (c: Check): void => void checks.push(c);

  const version = (await client.query<{ v: string; n: string }>("select current_setting('server_version') as v, current_setting('server_version_num') as n"))
    .rows[0]!;
  add(
    Number(version.n) >= 140000
      ? { name: 'server version', status: 'ok', detail: `PostgreSQL ${version.v}${db.backend === 'embedded' ? ' (embedded PGlite)' : ''}` }
      : {
          name: 'server version',
          status: 'fail',
          detail: `PostgreSQL ${version.v}`,
          fix: 'Sheratan needs PostgreSQL 14 or newer (16 is the production target)',
        },
  );

  const ext = (
    await client.query<{ available: string | null; installed: string | null }>(`
      select (select default_version from pg_available_extensions where name = 'vector') as available,
             (select extversion from pg_extension where extname = 'vector') as installed`)
  ).rows[0]!;
  if (!ext.available) {
    add({
      name: 'vector extension available',
      status: 'fail',
      detail: 'pgvector is not installed on this server (could not open extension control file)',
      fix: 'install pgvector for your PostgreSQL version (Debian/Ubuntu: apt-get install postgresql-16-pgvector; macOS: brew install pgvector), restart PostgreSQL, then npm run db:migrate',
    });
  } else if (!ext.installed) {
    add({
      name: 'vector extension installed',
      status: 'fail',
      detail: `pgvector ${ext.available} is available but not created in this database`,
      fix: 'npm run db:migrate (it runs CREATE EXTENSION vector)',
    });
  } else if (pgvectorVersionProblem(ext.installed)) {
    add({
      name: 'vector extension version',
      status: 'fail',
      detail: pgvectorVersionProblem(ext.installed)!,
      fix: 'install pgvector 0.8 or newer, then ALTER EXTENSION vector UPDATE',
    });
  } else {
    add({ name: 'vector extension version', status: 'ok', detail: `pgvector ${ext.installed} (HNSW and iterative index scans)` });
  }

  const tables = (await client.query<{ t: string }>("select table_name as t from information_schema.tables where table_schema = 'sheratan'")).rows.map(
    (r) => r.t,
  );
  const missingTables = TABLES.filter((t) => !tables.includes(t));
  add(
    missingTables.length
      ? { name: 'tables', status: 'fail', detail: `missing: ${missingTables.join(', ')}`, fix: 'npm run db:migrate' }
      : { name: 'tables', status: 'ok', detail: TABLES.join(', ') },
  );

  const dim = (await embeddingColumns(client)).live;
  if (dim == null) {
    add({ name: 'embedding dimension', status: 'fail', detail: 'sheratan.document_chunks.embedding does not exist', fix: 'npm run db:migrate' });
  } else if (dim !== config.vectorDimension) {
    add({
      name: 'embedding dimension',
      status: 'fail',
      detail: `VECTOR_DIMENSION is ${config.vectorDimension} but the column is vector(${dim}): inserts fail with "expected ${dim} dimensions, not ${config.vectorDimension}"`,
      fix:
        `set VECTOR_DIMENSION=${dim} to match the column (after an embedding model switch, the new model's dimension); ` +
        `to change the model, npm run embeddings:migrate -- --dimension ${config.vectorDimension} --name <model> (README, "Changing the embedding model")`,
    });
  } else {
    add({ name: 'embedding dimension', status: 'ok', detail: `vector(${dim}) = VECTOR_DIMENSION` });
  }
  if (dim != null) add(await embeddingProviderCheck(config, dim));
  if (tables.includes('embedding_models')) {
    const status = await embeddingModelStatus(client);
    const next = status.models.find((m) => m.state === 'next');
    const previous = status.models.find((m) => m.state === 'previous');
    if (next) {
      const total = status.embedded! + status.missing!;
      add({
        name: 'embedding model switch',
        status: 'warn',
        detail: `migrating to ${next.name} (vector(${next.dimension})): ${status.embedded} of ${total} chunks have its embedding, ${status.missing} to go; searches use the live embedding`,
        fix: status.missing
          ? 'store the new vectors with the storeEmbeddings mutation (or npm run embeddings:migrate -- --jobs and a worker), then npm run embeddings:migrate -- --switch'
          : 'every chunk has its new embedding: npm run embeddings:migrate -- --switch',
      });
    } else if (previous) {
      add({
        name: 'embedding model switch',
        status: 'warn',
        detail: `switched from ${previous.name} (vector(${previous.dimension})), whose column is still kept as embedding_previous`,
        fix: "once no client sends the old model's vectors: npm run embeddings:migrate -- --drop-previous",
      });
    }
  }

  const indexes = (
    await client.query<{ name: string; method: string; scans: string | null }>(`
      select i.relname as name, am.amname as method, s.idx_scan::text as scans
        from pg_class i join pg_am am on am.oid = i.relam
        join pg_namespace n on n.oid = i.relnamespace and n.nspname = 'sheratan'
        left join pg_stat_user_indexes s on s.indexrelid = i.oid
       where i.relkind = 'i'`)
  ).rows;
  const missingIndexes = INDEXES.filter((name) => !indexes.some((i) => i.name === name));
  add(
    missingIndexes.length
      ? {
          name: 'indexes',
          status: 'fail',
          detail: `missing: ${missingIndexes.join(', ')}`,
          fix: missingIndexes.includes(ANN_INDEX)
            ? 'recreate the ANN index: npm run index:tune -- --hnsw (or create index document_chunks_embedding_idx on sheratan.document_chunks using hnsw (embedding vector_cosine_ops)); for the others, npm run db:reset in development or a new migration'
            : 'recreate them in a new migration (see migrations/committed for their definitions)',
        }
      : { name: 'indexes', status: 'ok', detail: `${INDEXES.length} expected indexes present` },
  );
  const ann = indexes.find((i) => i.name === ANN_INDEX);
  const annInfo = ann ? await describeAnnIndex(client) : null;
  if (ann) {
    // What the index holds of each embedding, and why (above 2,000 dimensions pgvector indexes vector only as halfvec).
    const n = annInfo?.dimension;
    const on = !annInfo
      ? ''
      : annInfo.opclass.startsWith('bit')
        ? ` on binary_quantize(embedding)::bit(${n}) (one bit per dimension; searches re-rank the nearest ANN_RERANK_FACTOR × first candidates by Hamming distance with the exact cosine distance)`
        : annInfo.opclass.startsWith('halfvec') && (n ?? 0) > 2000
          ? ` on embedding::halfvec(${n}) (half precision: pgvector indexes vector columns of up to 2,000 dimensions, halfvec of up to 4,000; the searches order by the same expression and report full-precision distances)`
          : annInfo.opclass.startsWith('halfvec')
            ? ` on embedding::halfvec(${n}) (half precision, half the size${config.vectorIndex === 'hnsw_halfvec' ? ', as VECTOR_INDEX=hnsw_halfvec asks' : ''}; the searches report full-precision distances)`
            : '';
    if (annInfo && kindOf(annInfo) !== config.vectorIndex) {
      add({
        name: 'ANN index kind',
        status: 'warn',
        detail: `VECTOR_INDEX is ${config.vectorIndex} (hnsw when unset) but the index is ${kindOf(annInfo)} (it is built as VECTOR_INDEX says only while the table has no embeddings)`,
        fix: `to keep this index, set VECTOR_INDEX=${kindOf(annInfo)} (in .env or the environment); to follow VECTOR_INDEX instead: npm run index:tune -- --kind ${config.vectorIndex}`,
      });
    }
    add({
      name: 'ANN index',
      status: ann.method === 'hnsw' || ann.method === 'ivfflat' ? 'ok' : 'fail',
      detail: `${ANN_INDEX} uses ${ann.method}${on}; ${ann.scans ?? 0} index scans since statistics were reset (pg_stat_user_indexes)`,
      ...(ann.method === 'hnsw' || ann.method === 'ivfflat' ? {} : { fix: 'npm run index:tune -- --hnsw' }),
    });
  }

  // The seed guide's "Monitoring Index Usage" query as written fails (pg_stat_user_indexes has
  // relname and indexrelname, not tablename and indexname) and looks in schema public; run and print the corrected one.
  const usage = (await client.query<{ indexname: string; idx_scan: string }>(INDEX_USAGE_SQL)).rows;
  const unused = usage.filter((u) => Number(u.idx_scan) === 0).map((u) => u.indexname);
  add({
    name: 'index usage',
    status: 'ok',
    detail:
      `${usage.length} indexes in schema sheratan, ${unused.length} not scanned since statistics were reset${unused.length ? ` (${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', …' : ''})` : ''}; ` +
      `the seed guide's monitoring query, corrected: ${INDEX_USAGE_SQL}`,
  });

  const fk = (
    await client.query<{ conname: string; confdeltype: string }>(`
      select conname, confdeltype from pg_constraint
       where contype = 'f' and conrelid = to_regclass('sheratan.document_chunks') and confrelid = to_regclass('sheratan.documents')`)
  ).rows[0];
  add(
    fk?.confdeltype === 'c'
      ? { name: 'cascade foreign key', status: 'ok', detail: `${fk.conname}: document_chunks.document_id → documents ON DELETE CASCADE` }
      : {
          name: 'cascade foreign key',
          status: 'fail',
          detail: fk
            ? `${fk.conname} exists without ON DELETE CASCADE: deleting a document with chunks fails`
            : 'document_chunks.document_id has no foreign key to documents',
          fix:
            (fk ? `ALTER TABLE sheratan.document_chunks DROP CONSTRAINT ${fk.conname}; ` : '') +
            'ALTER TABLE sheratan.document_chunks ADD CONSTRAINT document_chunks_document_id_fkey FOREIGN KEY (document_id) REFERENCES sheratan.documents (id) ON DELETE CASCADE;',
        },
  );

  const roles = (
    await client.query<{ rolname: string; rolcanlogin: boolean; rolinherit: boolean; rolbypassrls: boolean; rolsuper: boolean }>(
      'select rolname, rolcanlogin, rolinherit, rolbypassrls, rolsuper from pg_roles where rolname = any ($1)',
      [DATABASE_ROLES],
    )
  ).rows;
  const problems: string[] = [];
  for (const name of DATABASE_ROLES) {
    const r = roles.find((x) => x.rolname === name);
    if (!r) problems.push(`${name} is missing`);
    else if (r.rolsuper || r.rolbypassrls) problems.push(`${name} can bypass row-level security`);
  }
  const auth = roles.find((r) => r.rolname === AUTHENTICATOR_ROLE);
  if (auth && (!auth.rolcanlogin || auth.rolinherit)) problems.push(`${AUTHENTICATOR_ROLE} must be LOGIN NOINHERIT`);
  const noRls = (
    await client.query<{ t: string }>(`
      select c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = 'sheratan' and c.relkind = 'r' and not c.relrowsecurity`)
  ).rows.map((r) => r.t);
  if (noRls.length) problems.push(`row-level security is off on ${noRls.join(', ')}`);
  const grants = (
    await client
      .query<{ ok: boolean }>(
        "select has_table_privilege($1, 'sheratan.documents', 'select') and not has_table_privilege($2, 'sheratan.documents', 'insert') as ok",
        [APP_ROLE, READONLY_ROLE],
      )
      .catch(() => ({ rows: [{ ok: false }] }))
  ).rows[0]!.ok;
  if (!grants) problems.push('grants on sheratan.documents are not as the migrations set them');
  add(
    problems.length
      ? {
          name: 'roles, grants and row-level security',
          status: 'fail',
          detail: problems.join('; '),
          fix: 'npm run db:migrate (it recreates the roles from migrations/afterReset.sql); in development npm run db:reset -- --erase',
        }
      : {
          name: 'roles, grants and row-level security',
          status: 'ok',
          detail: 'API roles exist without BYPASSRLS, the authenticator is NOINHERIT, RLS is on every table in sheratan',
        },
  );

  const maxConnections = Number((await client.query<{ m: string }>("select current_setting('max_connections') as m")).rows[0]!.m);
  const poolMax = config.poolSize + config.poolMaxOverflow;
  add(
    poolMax < maxConnections
      ? {
          name: 'pool settings',
          status: 'ok',
          detail: `pool max ${poolMax} (DB_POOL_SIZE ${config.poolSize} + DB_MAX_OVERFLOW ${config.poolMaxOverflow}) per gateway; server max_connections ${maxConnections}`,
        }
      : {
          name: 'pool settings',
          status: 'warn',
          detail: `pool max ${poolMax} per gateway is not below the server's max_connections ${maxConnections}: connections will be refused`,
          fix: `lower DB_POOL_SIZE/DB_MAX_OVERFLOW so that (gateways × ${poolMax}) stays below max_connections, or raise max_connections`,
        },
  );

  if (db.backend === 'server' && requiredSslMode(db.ownerUrl)) {
    const ssl = (await client.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows[0]?.ssl ?? false;
    add(
      ssl
        ? { name: 'SSL', status: 'ok', detail: 'the connection is encrypted' }
        : {
            name: 'SSL',
            status: 'fail',
            detail: 'sslmode=require but the connection is not encrypted',
            fix: 'enable ssl on the server (ssl = on with a certificate)',
          },
    );
  }
  return checks;
}

/**
 * The seed guide's "Monitoring Index Usage" query, corrected: pg_stat_user_indexes
 * names the table relname and the index indexrelname, and the store's tables are in schema sheratan.
 */
export const INDEX_USAGE_SQL =
  "SELECT schemaname, relname AS tablename, indexrelname AS indexname, idx_scan, idx_tup_read, idx_tup_fetch FROM pg_stat_user_indexes WHERE schemaname = 'sheratan' ORDER BY idx_scan, indexrelname;";

/** The sslmode a connection string asks for when it asks for an encrypted connection (require, verify-ca, verify-full). */
function requiredSslMode(url: string): string | undefined {
  let mode: string | null;
  try {
    mode = new URL(url).searchParams.get('sslmode');
  } catch {
    return undefined;
  }
  return mode && ['require', 'verify-ca', 'verify-full'].includes(mode) ? mode : undefined;
}

/** The provider answers with the column's dimension: the check `npm start` makes (src/embedding/check.ts). */
async function embeddingProviderCheck(config: Config, column: number): Promise<Check> {
  const name = 'embedding provider';
  const provider = createEmbeddingProvider(config);
  try {
    return { name, status: 'ok', detail: await checkEmbeddingProvider(provider, column) };
  } catch (err) {
    if (err instanceof ProviderCheckError) return { name, status: 'fail', detail: err.detail, fix: err.fix };
    return { name, status: 'fail', detail: (err as Error).message };
  } finally {
    await provider?.close();
  }
}

export async function runDoctor(config: Config, db: Database): Promise<Check[]> {
  const checks: Check[] = [];
  try {
    await withPgClient(db.ownerUrl, async (client) => {
      checks.push({
        name: 'connection',
        status: 'ok',
        detail: db.backend === 'embedded' ? `embedded database in ${config.dataDir}` : 'connected with DATABASE_URL',
      });
      checks.push(...(await catalogChecks(client, config, db)));
    });
  } catch (err) {
    if (checks.length === 0) {
      const sslMode = db.backend === 'server' ? requiredSslMode(db.ownerUrl) : undefined;
      // node-postgres refuses to go on unencrypted when DATABASE_URL asks for TLS, so the SSL check is this failure.
      if (sslMode && /does not support SSL connections/i.test((err as Error).message)) {
        return [
          {
            name: 'SSL',
            status: 'fail',
            detail: `sslmode=${sslMode} in DATABASE_URL, but the server does not support SSL connections (nothing was connected unencrypted)`,
            fix:
              `enable SSL on the server (ssl = on in postgresql.conf, with ssl_cert_file and ssl_key_file, then reload it), ` +
              `or remove sslmode=${sslMode} from DATABASE_URL where the connection need not be encrypted (loopback, the embedded engine)`,
          },
        ];
      }
      return [{ name: 'connection', status: 'fail', detail: (err as Error).message, fix: 'check DATABASE_URL and that PostgreSQL is running and reachable' }];
    }
    checks.push({ name: 'checks', status: 'fail', detail: `a check failed to run: ${(err as Error).message}` });
  }
  try {
    const status = await gm.status(migrateSettings(config, db));
    const pending = status.remainingMigrations ?? [];
    checks.push(
      pending.length
        ? {
            name: 'migrations',
            status: 'fail',
            detail: `${pending.length} committed migration(s) not applied: ${pending.join(', ')}`,
            fix: 'npm run db:migrate',
          }
        : { name: 'migrations', status: 'ok', detail: 'all committed migrations applied' },
    );
  } catch (err) {
    checks.push({ name: 'migrations', status: 'fail', detail: (err as Error).message, fix: 'npm run db:migrate' });
  }
  return checks;
}

export function formatChecks(checks: Check[]): string {
  const mark = { ok: '✓', warn: '!', fail: '✗' } as const;
  return checks.map((c) => `${mark[c.status]} ${c.name}: ${c.detail}${c.fix ? `\n    fix: ${c.fix}` : ''}`).join('\n');
}

// The store's indexes: all present, the ANN index of the kind VECTOR_INDEX
// names and of an access method that serves nearest-neighbour searches, and
// how often each index has been scanned.
import { ANN_INDEX, kindOf } from '../../database/ann-index.ts';
import type { DoctorCheck } from './types.ts';

export const INDEXES = [
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

/**
 * The seed guide's "Monitoring Index Usage" query, corrected: pg_stat_user_indexes
 * names the table relname and the index indexrelname, and the store's tables are in schema sheratan.
 */
export const INDEX_USAGE_SQL =
  "SELECT schemaname, relname AS tablename, indexrelname AS indexname, idx_scan, idx_tup_read, idx_tup_fetch FROM pg_stat_user_indexes WHERE schemaname = 'sheratan' ORDER BY idx_scan, indexrelname;";

export const indexes: DoctorCheck = {
  name: 'indexes',
  async run(ctx) {
    const present = await ctx.indexes();
    const missing = INDEXES.filter((name) => !present.some((i) => i.name === name));
    return missing.length
      ? {
          name: 'indexes',
          status: 'fail',
          detail: `missing: ${missing.join(', ')}`,
          fix: missing.includes(ANN_INDEX)
            ? 'recreate the ANN index: npm run index:tune -- --hnsw (or create index document_chunks_embedding_idx on sheratan.document_chunks using hnsw (embedding vector_cosine_ops)); for the others, npm run db:reset in development or a new migration'
            : 'recreate them in a new migration (see migrations/committed for their definitions)',
        }
      : { name: 'indexes', status: 'ok', detail: `${INDEXES.length} expected indexes present` };
  },
};

/** A warning when the ANN index is not the kind VECTOR_INDEX names; nothing otherwise. */
export const annIndexKind: DoctorCheck = {
  name: 'ANN index kind',
  async run(ctx) {
    const info = await ctx.annIndex();
    const { vectorIndex } = ctx.config;
    if (!info || kindOf(info) === vectorIndex) return [];
    return {
      name: 'ANN index kind',
      status: 'warn',
      detail: `VECTOR_INDEX is ${vectorIndex} (hnsw when unset) but the index is ${kindOf(info)} (it is built as VECTOR_INDEX says only while the table has no embeddings)`,
      fix: `to keep this index, set VECTOR_INDEX=${kindOf(info)} (in .env or the environment); to follow VECTOR_INDEX instead: npm run index:tune -- --kind ${vectorIndex}`,
    };
  },
};

/** The ANN index's access method, what it holds of each embedding and why, and its scans; nothing without the index (the indexes check names it missing). */
export const annIndex: DoctorCheck = {
  name: 'ANN index',
  async run(ctx) {
    const ann = (await ctx.indexes()).find((i) => i.name === ANN_INDEX);
    if (!ann) return [];
    const info = await ctx.annIndex();
    // What the index holds of each embedding, and why (above 2,000 dimensions pgvector indexes vector only as halfvec).
    const n = info?.dimension;
    const on = !info
      ? ''
      : info.opclass.startsWith('bit')
        ? ` on binary_quantize(embedding)::bit(${n}) (one bit per dimension; searches re-rank the nearest ANN_RERANK_FACTOR × first candidates by Hamming distance with the exact cosine distance)`
        : info.opclass.startsWith('halfvec') && (n ?? 0) > 2000
          ? ` on embedding::halfvec(${n}) (half precision: pgvector indexes vector columns of up to 2,000 dimensions, halfvec of up to 4,000; the searches order by the same expression and report full-precision distances)`
          : info.opclass.startsWith('halfvec')
            ? ` on embedding::halfvec(${n}) (half precision, half the size${ctx.config.vectorIndex === 'hnsw_halfvec' ? ', as VECTOR_INDEX=hnsw_halfvec asks' : ''}; the searches report full-precision distances)`
            : '';
    const serves = ann.method === 'hnsw' || ann.method === 'ivfflat';
    return {
      name: 'ANN index',
      status: serves ? 'ok' : 'fail',
      detail: `${ANN_INDEX} uses ${ann.method}${on}; ${ann.scans ?? 0} index scans since statistics were reset (pg_stat_user_indexes)`,
      ...(serves ? {} : { fix: 'npm run index:tune -- --hnsw' }),
    };
  },
};

/** Never fails: the corrected monitoring query, run, and the indexes it finds unscanned. */
export const indexUsage: DoctorCheck = {
  name: 'index usage',
  async run({ client }) {
    // The seed guide's "Monitoring Index Usage" query as written fails (pg_stat_user_indexes has
    // relname and indexrelname, not tablename and indexname) and looks in schema public; run and print the corrected one.
    const usage = (await client.query<{ indexname: string; idx_scan: string }>(INDEX_USAGE_SQL)).rows;
    const unused = usage.filter((u) => Number(u.idx_scan) === 0).map((u) => u.indexname);
    return {
      name: 'index usage',
      status: 'ok',
      detail:
        `${usage.length} indexes in schema sheratan, ${unused.length} not scanned since statistics were reset${unused.length ? ` (${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', …' : ''})` : ''}; ` +
        `the seed guide's monitoring query, corrected: ${INDEX_USAGE_SQL}`,
    };
  },
};

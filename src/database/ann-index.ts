// The ANN index on document_chunks.embedding (`npm run index:tune`, and
// VECTOR_INDEX at migrate): inspect it, rebuild HNSW with other parameters,
// or switch to IVFFlat once there is data
// (seed guide, "IVFFlat Index Tuning": lists = rows / 1000, sqrt(rows) above
// 1M rows). The index keeps its name, so checks and plans keep finding it.
import type pg from 'pg';
import { embeddingColumns } from './vector-column.ts';

export const ANN_INDEX = 'document_chunks_embedding_idx';

export interface AnnIndex {
  name: string;
  method: string;
  /** Its operator class: vector_cosine_ops, or halfvec_cosine_ops on embedding::halfvec(n). */
  opclass: string;
  /** The embedding column's dimension. */
  dimension: number;
  options: string[];
  size: string;
  scans: number;
  rows: number;
}

/**
 * What an index stores of each embedding: `auto` the vector itself where
 * pgvector allows (up to 2,000 dimensions) and halfvec above; `half` halfvec
 * (half the size, any dimension up to 4,000); `binary` one bit per dimension
 * (binary_quantize, searched by Hamming distance and re-ranked exactly).
 */
export type AnnPrecision = 'auto' | 'half' | 'binary';

export type AnnSpec = ({ method: 'hnsw'; m: number; efConstruction: number } | { method: 'ivfflat'; lists?: number }) & { precision?: AnnPrecision };

/** VECTOR_INDEX and `index:tune -- --kind`: the ANN index kinds. */
export const INDEX_KINDS = ['hnsw', 'hnsw_halfvec', 'hnsw_binary', 'ivfflat'] as const;
export type IndexKind = (typeof INDEX_KINDS)[number];

/** The spec that builds `kind` (HNSW with pgvector's default m and ef_construction). */
export function specForKind(kind: IndexKind, lists?: number): AnnSpec {
  if (kind === 'ivfflat') return { method: 'ivfflat', ...(lists ? { lists } : {}) };
  return { method: 'hnsw', m: 16, efConstruction: 64, precision: kind === 'hnsw_halfvec' ? 'half' : kind === 'hnsw_binary' ? 'binary' : 'auto' };
}

/** The kind an index is, as VECTOR_INDEX names it. */
export function kindOf(index: AnnIndex): IndexKind {
  if (index.method === 'ivfflat') return 'ivfflat';
  if (index.opclass.startsWith('bit')) return 'hnsw_binary';
  // Above 2,000 dimensions an index on halfvec is what plain `hnsw` builds too.
  return index.opclass.startsWith('halfvec') && index.dimension <= 2000 ? 'hnsw_halfvec' : 'hnsw';
}

export async function describeAnnIndex(client: pg.Client): Promise<AnnIndex | null> {
  const { rows } = await client.query(
    `
    select i.relname as name, am.amname as method, coalesce(i.reloptions, '{}') as options,
           (select o.opcname from pg_opclass o where o.oid = x.indclass[0]) as opclass,
           pg_size_pretty(pg_relation_size(i.oid)) as size, coalesce(s.idx_scan, 0)::int as scans,
           (select count(*) from sheratan.document_chunks where embedding is not null)::int as rows
      from pg_index x
      join pg_class i on i.oid = x.indexrelid
      join pg_am am on am.oid = i.relam
      left join pg_stat_user_indexes s on s.indexrelid = i.oid
     where x.indrelid = 'sheratan.document_chunks'::regclass and am.amname in ('hnsw', 'ivfflat')
     order by i.relname = $1 desc
     limit 1`,
    [ANN_INDEX],
  );
  const index = rows[0] as Omit<AnnIndex, 'dimension'> | undefined;
  return index ? { ...index, dimension: (await embeddingColumns(client)).live! } : null;
}

/**
 * What the index is built on: the embedding with vector_cosine_ops, or above
 * 2,000 dimensions (pgvector's limit for vector in HNSW and IVFFlat) the
 * embedding as halfvec(n) with halfvec_cosine_ops, which the searches order
 * by (sheratan_private.ann_distance_sql).
 */
async function annColumn(client: pg.Client, current: AnnIndex | null, precision: AnnPrecision): Promise<string> {
  const dimension = current?.dimension ?? (await embeddingColumns(client)).live!;
  if (precision === 'binary') return `(binary_quantize(embedding)::bit(${dimension})) bit_hamming_ops`;
  return precision === 'half' || dimension > 2000 ? `(embedding::halfvec(${dimension})) halfvec_cosine_ops` : 'embedding vector_cosine_ops';
}

/**
 * After migrating: builds the index VECTOR_INDEX names when the table has no
 * embedded chunks yet (a cheap build). With chunks it is left as it is, never
 * a surprise rebuild at start: doctor says how to switch (index:tune).
 */
export async function ensureIndexKind(client: pg.Client, kind: IndexKind): Promise<'as asked' | 'built' | 'left'> {
  const index = await describeAnnIndex(client);
  if (index && kindOf(index) === kind) return 'as asked';
  if ((index?.rows ?? 1) > 0 || kind === 'ivfflat') return 'left';
  await rebuildAnnIndex(client, specForKind(kind), { concurrently: false, maintenanceWorkMem: '64MB' });
  return 'built';
}

/** The seed guide's rule of thumb for IVFFlat lists. */
export function ivfflatLists(rows: number): number {
  return rows > 1_000_000 ? Math.round(Math.sqrt(rows)) : Math.max(1, Math.round(rows / 1000));
}

/**
 * Builds the new index beside the old one, then swaps them, so searches keep
 * an index throughout. `concurrently` (servers) avoids blocking writes.
 */
export async function rebuildAnnIndex(client: pg.Client, spec: AnnSpec, options: { concurrently: boolean; maintenanceWorkMem: string }): Promise<string> {
  const current = await describeAnnIndex(client);
  const column = await annColumn(client, current, spec.precision ?? 'auto');
  let using: string;
  if (spec.method === 'hnsw') {
    using = `hnsw (${column}) with (m = ${spec.m}, ef_construction = ${spec.efConstruction})`;
  } else {
    const rows = current?.rows ?? 0;
    if (!spec.lists && rows === 0) {
      throw new Error('IVFFlat needs data to build its lists: load chunks first (HNSW works on an empty table), or pass --lists');
    }
    using = `ivfflat (${column}) with (lists = ${spec.lists ?? ivfflatLists(rows)})`;
  }
  const cc = options.concurrently ? ' concurrently' : '';
  await client.query(`set maintenance_work_mem = ${client.escapeLiteral(options.maintenanceWorkMem)}`);
  await client.query(`drop index${cc} if exists sheratan.document_chunks_embedding_new_idx`);
  await client.query(`create index${cc} document_chunks_embedding_new_idx on sheratan.document_chunks using ${using}`);
  if (current) await client.query(`drop index${cc} sheratan.${client.escapeIdentifier(current.name)}`);
  await client.query(`alter index sheratan.document_chunks_embedding_new_idx rename to ${ANN_INDEX}`);
  await client.query('reset maintenance_work_mem');
  // The planner costs the new index with the table's statistics: a table never
  // analyzed (the embedded engine has no autovacuum) had searches planned as
  // exact scans beside a fresh index (issue 30, item 6).
  await client.query('analyze sheratan.document_chunks');
  return using;
}

/** One line about the ANN index for people (index:tune), or what its absence means. */
export function formatAnnIndex(index: AnnIndex | null): string {
  if (!index) return 'no ANN index on sheratan.document_chunks.embedding: searches scan every row (run with --hnsw)\n';
  return (
    `${index.name}: ${kindOf(index)} (${index.method} with ${index.opclass}) ${index.options.join(', ') || '(default parameters)'}, ${index.size}, ` +
    `${index.rows} embedded chunks, ${index.scans} scans since statistics reset\n`
  );
}

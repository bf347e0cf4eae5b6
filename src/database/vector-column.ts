// What the gateway needs to know about pgvector before serving: that its
// version is one we test (0.8 or newer: CI runs 0.8 on PostgreSQL 15, and
// PGlite ships 0.8), that the embedding column has the configured dimension,
// and the query-time settings every search gets.
import type { Config } from '../config/config.ts';
import { withPgClient } from './connect.ts';

export class DimensionMismatchError extends Error {}

export interface VectorInfo {
  /** pgvector's version, e.g. "0.8.0". */
  version: string;
  /** The embedding column's dimension. */
  dimension: number;
  /** During a model switch, the dimension of the column being migrated to. */
  next: number | null;
}

/** Anything that runs a query: a client or a pool. */
interface Queryable {
  query<R extends object>(text: string): Promise<{ rows: R[] }>;
}

/**
 * The dimensions of the live embedding (`embedding`) and, during a model
 * switch (npm run embeddings:migrate), of the one being migrated to
 * (`embedding_next`); null where there is no such column. Reads catalogs
 * only, so the authenticator (which has no schema privileges) may run it.
 */
export async function embeddingColumns(client: Queryable): Promise<{ live: number | null; next: number | null }> {
  const { rows } = await client.query<{ name: string; dimension: number }>(`
    select a.attname as name, a.atttypmod as dimension
      from pg_attribute a
      join pg_class c on c.oid = a.attrelid
      join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'sheratan' and c.relname = 'document_chunks'
       and a.attname in ('embedding', 'embedding_next') and not a.attisdropped`);
  const of = (name: string): number | null => rows.find((r) => r.name === name)?.dimension ?? null;
  return { live: of('embedding'), next: of('embedding_next') };
}

/** The oldest pgvector the store runs on: the one CI tests (iterative index scans arrived in it). */
export const MIN_PGVECTOR = { major: 0, minor: 8 } as const;

/** Why a pgvector version is refused, or null when it is supported. */
export function pgvectorVersionProblem(version: string): string | null {
  if (versionAtLeast(version, MIN_PGVECTOR.major, MIN_PGVECTOR.minor)) return null;
  return (
    `pgvector ${version} is older than ${MIN_PGVECTOR.major}.${MIN_PGVECTOR.minor}, the oldest this store is tested with ` +
    '(filtered searches need its iterative index scans to return k results)'
  );
}

export async function inspectVector(url: string): Promise<VectorInfo> {
  return withPgClient(url, async (client) => {
    const { rows } = await client.query<{ version: string | null }>("select extversion as version from pg_extension where extname = 'vector'");
    if (!rows[0]?.version) throw new Error('the vector extension is not installed; run the migrations (npm run db:migrate)');
    const tooOld = pgvectorVersionProblem(rows[0].version);
    if (tooOld) throw new Error(`${tooOld}: install pgvector 0.8 or newer, then ALTER EXTENSION vector UPDATE`);
    const { live, next } = await embeddingColumns(client);
    if (live === null) throw new Error('sheratan.document_chunks.embedding does not exist; run the migrations (npm run db:migrate)');
    return { version: rows[0].version, dimension: live, next };
  });
}

/**
 * What the Vector scalar accepts, kept current while the gateway runs: a
 * model switch changes it without a restart.
 */
export class AcceptedDimensions {
  private values: readonly number[];
  constructor(columns: { dimension: number; next: number | null }) {
    this.values = dimensionsOf(columns.dimension, columns.next);
  }
  get = (): readonly number[] => this.values;
  async refresh(client: Queryable): Promise<void> {
    const { live, next } = await embeddingColumns(client);
    if (live !== null) this.values = dimensionsOf(live, next);
  }
}

const dimensionsOf = (live: number, next: number | null): readonly number[] => (next === null ? [live] : [live, next]);

/** Refuses to serve when VECTOR_DIMENSION and the column disagree (the seed guide's "expected 384 dimensions, not 768"). */
export function assertDimension(config: Pick<Config, 'vectorDimension'>, info: VectorInfo): void {
  if (info.dimension === config.vectorDimension) return;
  throw new DimensionMismatchError(
    `VECTOR_DIMENSION is ${config.vectorDimension} but sheratan.document_chunks.embedding is vector(${info.dimension}); ` +
      `set VECTOR_DIMENSION=${info.dimension} (after an embedding model switch, the new model's dimension), ` +
      `or change the model with npm run embeddings:migrate -- --dimension ${config.vectorDimension} --name <model>`,
  );
}

/** Whether a version like "0.8.0" is at least major.minor. */
export function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

/**
 * Transaction-local ANN settings for every request. Iterative index scans
 * let a filtered search keep scanning until it has its k results; strict
 * order keeps results exactly sorted by distance.
 */
export function searchSettings(config: Pick<Config, 'searchEf' | 'ivfflatProbes' | 'annRerankFactor'>): Record<string, string> {
  const settings: Record<string, string> = {
    'hnsw.ef_search': String(config.searchEf),
    // How many candidates a binary-quantized index hands to the exact re-ranking (nearest_sql).
    'sheratan.ann_rerank_factor': String(config.annRerankFactor),
  };
  if (config.ivfflatProbes !== undefined) settings['ivfflat.probes'] = String(config.ivfflatProbes);
  settings['hnsw.iterative_scan'] = 'strict_order';
  settings['ivfflat.iterative_scan'] = 'relaxed_order';
  return settings;
}

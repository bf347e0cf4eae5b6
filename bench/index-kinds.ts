// The benchmark's index-kind table (issue 16): for each dimension and each
// VECTOR_INDEX kind, on a scratch table of the same shape as
// document_chunks.embedding (schema sheratan_bench, dropped afterwards):
// build time, index size (pg_relation_size), recall@10 against the exact
// ranking, and p50 of the top-10 query in the form the store's searches give
// it for that kind (sheratan_private.nearest_sql: the index's own order
// expression, and for the binary index ANN_RERANK_FACTOR × k candidates
// re-ranked by exact distance), at the gateway's accuracy settings.
import type pg from 'pg';
import { percentile } from './support.ts';
import { topicalVectors, toPgVector } from '../test/support/embeddings.ts';

export interface KindFigures {
  build_s: number;
  index_bytes: number;
  recall_at_10: number;
  p50_ms: number;
}

const KINDS = {
  hnsw: (n: number) => (n > 2000 ? `hnsw ((embedding::halfvec(${n})) halfvec_cosine_ops)` : 'hnsw (embedding vector_cosine_ops)'),
  hnsw_halfvec: (n: number) => `hnsw ((embedding::halfvec(${n})) halfvec_cosine_ops)`,
  hnsw_binary: (n: number) => `hnsw ((binary_quantize(embedding)::bit(${n})) bit_hamming_ops)`,
  ivfflat: (n: number) =>
    (n > 2000 ? `ivfflat ((embedding::halfvec(${n})) halfvec_cosine_ops)` : 'ivfflat (embedding vector_cosine_ops)') + ' with (lists = LISTS)',
} as const;

function topK(kind: keyof typeof KINDS, n: number, rerank: number): string {
  const order =
    kind === 'hnsw_binary'
      ? `binary_quantize(embedding)::bit(${n}) <~> binary_quantize($1)`
      : kind === 'hnsw_halfvec' || n > 2000
        ? `embedding::halfvec(${n}) <=> $1::halfvec(${n})`
        : 'embedding <=> $1';
  const base = `select id, embedding <=> $1 as distance from sheratan_bench.kind_chunks order by ${order}`;
  return kind === 'hnsw_binary' ? `select r.* from (${base} limit ${Math.max(40, 10 * rerank)}) r order by r.distance limit 10` : `${base} limit 10`;
}

/** Measures every kind at each of `dims`, with `rows` vectors and `queries` queries; `settings` are the gateway's ANN settings. */
export async function measureIndexKinds(
  pool: pg.Pool,
  dims: number[],
  rows: number,
  queries: number,
  settings: Record<string, string>,
  rerank: number,
): Promise<Record<string, Record<string, KindFigures>>> {
  const out: Record<string, Record<string, KindFigures>> = {};
  const client = await pool.connect();
  try {
    for (const [k, v] of Object.entries({ ...settings, 'ivfflat.probes': String(Math.max(1, Math.round(Math.sqrt(rows / 1000)) * 2)) })) {
      await client.query('select set_config($1, $2, false)', [k, v]);
    }
    await client.query("set maintenance_work_mem = '512MB'");
    for (const n of dims) {
      await client.query('drop schema if exists sheratan_bench cascade; create schema sheratan_bench');
      await client.query(`create table sheratan_bench.kind_chunks (id integer primary key, embedding vector(${n}) not null)`);
      const vectors = topicalVectors(rows, n, 5150 + n, 64, 1.0);
      for (let at = 0; at < rows; at += 200) {
        const slice = vectors.slice(at, at + 200);
        const params = slice.map((v) => toPgVector(v));
        await client.query(
          `insert into sheratan_bench.kind_chunks (id, embedding) select ${at} + i, e::vector from unnest($1::text[]) with ordinality as u(e, i)`,
          [params],
        );
      }
      const qs = topicalVectors(queries, n, 9150 + n, 64, 1.0).map(toPgVector);
      // The exact top 10 of each query (no index yet).
      const truth: Array<Set<number>> = [];
      for (const q of qs) {
        const { rows: r } = await client.query('select id from sheratan_bench.kind_chunks order by embedding <=> $1 limit 10', [q]);
        truth.push(new Set(r.map((x) => x.id as number)));
      }
      out[String(n)] = {};
      for (const kind of Object.keys(KINDS) as Array<keyof typeof KINDS>) {
        const lists = Math.max(1, Math.round(rows / 1000));
        const started = performance.now();
        await client.query(`create index kind_idx on sheratan_bench.kind_chunks using ${KINDS[kind](n).replace('LISTS', String(lists))}`);
        const build = (performance.now() - started) / 1000;
        const size = Number((await client.query("select pg_relation_size('sheratan_bench.kind_idx') as b")).rows[0].b);
        const sql = topK(kind, n, rerank);
        for (const q of qs.slice(0, 5)) await client.query(sql, [q]); // warm
        const lat: number[] = [];
        let found = 0;
        for (const [i, q] of qs.entries()) {
          const t = performance.now();
          const { rows: r } = await client.query(sql, [q]);
          lat.push(performance.now() - t);
          found += r.filter((x) => truth[i]!.has(x.id as number)).length;
        }
        out[String(n)]![kind] = {
          build_s: Math.round(build * 100) / 100,
          index_bytes: size,
          recall_at_10: Math.round((found / (qs.length * 10)) * 1000) / 1000,
          p50_ms: Math.round(percentile(lat, 50) * 100) / 100,
        };
        await client.query('drop index sheratan_bench.kind_idx');
      }
    }
  } finally {
    await client.query('drop schema if exists sheratan_bench cascade').catch(() => undefined);
    client.release();
  }
  return out;
}

// The nearest-chunks statement a search runs (sheratan_private.nearest_sql),
// with its three parameters written in, for EXPLAIN: $1 the query vector,
// $2 the scope (a sheratan_private.chunk_scope(...) expression), $3 the limit.
import type pg from 'pg';
import { toPgVector } from './embeddings.ts';

export async function nearestSql(client: pg.ClientBase, vector: number[], limit: number, scope = 'sheratan_private.chunk_scope(null::jsonb)'): Promise<string> {
  const { rows } = await client.query<{ s: string }>(`select sheratan_private.nearest_sql(${scope}) as s`);
  return rows[0]!.s.replaceAll('$1', `'${toPgVector(vector)}'::vector`).replaceAll('$2', `(${scope})`).replaceAll('$3', String(limit));
}

// Deterministic embeddings with the structure of real ones: topics (random
// unit centres) and documents scattered around them, not uniform noise (where
// every ANN index scores near zero) and not tight clusters (where it scores a
// trivial 1.0).
import type pg from 'pg';

/** mulberry32: a small, fast, seeded PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
}

export function normalise(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

export function randomUnit(dim: number, next: () => number): number[] {
  return normalise(Array.from({ length: dim }, () => gaussian(next)));
}

/**
 * `count` unit vectors shaped like sentence embeddings: real embedding sets
 * have a low intrinsic dimension (they vary along a few dozen directions, not
 * all 384), so points are drawn around `topics` centres in a 16-dimensional
 * latent space, projected into `dim` dimensions by a fixed random matrix, then
 * given a little isotropic noise and normalised. `spread` is the within-topic
 * scatter relative to the distance between topics.
 */
export function topicalVectors(count: number, dim: number, seed: number, topics = 24, spread = 0.8): number[][] {
  const LATENT = 16;
  const structure = rng(1234); // the same space (centres, projection) for every seed
  const centres = Array.from({ length: topics }, () => Array.from({ length: LATENT }, () => gaussian(structure)));
  const projection = Array.from({ length: dim }, () => Array.from({ length: LATENT }, () => gaussian(structure) / Math.sqrt(LATENT)));
  const next = rng(seed);
  return Array.from({ length: count }, () => {
    const c = centres[Math.floor(next() * topics)]!;
    const z = c.map((x) => x + spread * gaussian(next));
    return normalise(projection.map((row) => row.reduce((acc, w, j) => acc + w * z[j]!, 0) + 0.05 * gaussian(next)));
  });
}

export function cosineDistance(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return 1 - dot / Math.sqrt(na * nb);
}

/** The exact top-k ids by cosine distance. */
export function bruteForce(query: number[], items: Array<{ id: string; embedding: number[] }>, k: number): Array<{ id: string; distance: number }> {
  return items
    .map((it) => ({ id: it.id, distance: cosineDistance(query, it.embedding) }))
    .sort((x, y) => x.distance - y.distance || (x.id < y.id ? -1 : 1))
    .slice(0, k);
}

export const toPgVector = (v: number[]): string => `[${v.join(',')}]`;

/**
 * A document of `tenant` with `n` chunks of random 384-number vectors,
 * inserted as the owner in one statement (test data, not the API under
 * test: one correlated subquery per row); the document's id.
 */
export async function insertRandomChunks(owner: pg.Client, tenant: string, n: number, title = 'many chunks'): Promise<string> {
  const id = (await owner.query<{ id: string }>('insert into sheratan.documents (tenant, title) values ($1, $2) returning id', [tenant, title])).rows[0]!.id;
  await owner.query(
    `insert into sheratan.document_chunks (tenant, document_id, chunk_index, content, embedding)
     select $1, $2, g.i, 'chunk ' || g.i, (select array_agg(random() + d.j * 0 + g.i * 0)::vector(384) from generate_series(1, 384) d(j))
       from generate_series(0, $3 - 1) g(i)`,
    [tenant, id, n],
  );
  return id;
}

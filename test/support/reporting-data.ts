// Generated activity for the reporting views (searches, documents and chunks,
// jobs) over several days and two tenants, written as the owner with the
// timestamps chosen here, and the views' figures computed from it
// independently, in JavaScript, for a tenant and a time zone: the views are
// checked against this, not against SQL of their own kind.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { randomUnit, rng } from './embeddings.ts';

export const TENANTS = ['acme', 'globex'] as const;
/** Around the 2026 North American daylight-saving change (8 March), five days. */
const START = Date.UTC(2026, 2, 5, 12);
const SPAN_MS = 5 * 24 * 3600 * 1000;
const MODES = [{}, { diversity: { lambda: 0.5, candidates: 40 } }, { mode: 'hybrid' }, { mode: 'similarChunks' }, { mode: 'similarDocuments' }] as const;
const SOURCES: Array<unknown> = [undefined, undefined, ['wiki'], ['wiki', 'blog'], ['blog', 'wiki'], { items: 3 }];
const JOB_TYPES = ['embed_document', 'report', 'export'] as const;
const STATUSES = ['pending', 'running', 'completed', 'completed', 'failed', 'cancelled'] as const;

export interface SearchRow {
  tenant: string;
  created_at: Date;
  filters: Record<string, unknown>;
  k: number;
  result_count: number;
  top_similarity: number | null;
  latency_ms: number;
  query_text: string | null;
}
export interface DocumentRow {
  id: string;
  tenant: string;
  created_at: Date;
  content: string;
}
export interface ChunkRow {
  tenant: string;
  document_id: string;
  chunk_index: number;
  created_at: Date;
  content: string;
  embedded: boolean;
  model: string | null;
  token_count: number | null;
}
export interface JobRow {
  tenant: string;
  job_type: string;
  status: string;
  attempts: number;
  created_at: Date;
  updated_at: Date;
  run_at: Date;
}
export interface Activity {
  searches: SearchRow[];
  documents: DocumentRow[];
  chunks: ChunkRow[];
  jobs: JobRow[];
}

export function generateActivity(seed: number, size = 1): Activity {
  const next = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const at = () => new Date(START + Math.floor(next() * SPAN_MS));
  const text = (n: number) => Array.from({ length: n }, () => pick(['vector', 'ünïcode', 'search', 'report', '東京', 'index'])).join(' ');
  const searches: SearchRow[] = Array.from({ length: 240 * size }, () => {
    const filters: Record<string, unknown> = { ...pick(MODES) };
    const sources = pick(SOURCES);
    if (sources !== undefined) filters.sources = sources;
    const result_count = next() < 0.2 ? 0 : 1 + Math.floor(next() * 10);
    return {
      tenant: pick(TENANTS),
      created_at: at(),
      filters,
      k: 10,
      result_count,
      top_similarity: result_count === 0 || next() < 0.2 ? null : Math.round(next() * 1e6) / 1e6,
      // Long tails, as latencies have.
      latency_ms: Math.round(1000 * (0.5 + 40 * next() ** 4)) / 1000,
      query_text: next() < 0.5 ? text(3) : null,
    };
  });
  const documents: DocumentRow[] = Array.from({ length: 30 * size }, () => ({
    id: randomUUID(),
    tenant: pick(TENANTS),
    created_at: at(),
    content: text(1 + Math.floor(next() * 20)),
  }));
  const chunks: ChunkRow[] = documents.flatMap((d) =>
    Array.from({ length: Math.floor(next() * 5) }, (_, chunk_index) => {
      const embedded = next() < 0.7;
      return {
        tenant: d.tenant,
        document_id: d.id,
        chunk_index,
        created_at: new Date(d.created_at.getTime() + Math.floor(next() * 36 * 3600 * 1000)),
        content: text(1 + Math.floor(next() * 8)),
        embedded,
        model: embedded ? pick([null, 'local:use-lite-512', 'mpnet']) : null,
        token_count: next() < 0.3 ? null : Math.floor(next() * 200),
      };
    }),
  );
  const jobs: JobRow[] = Array.from({ length: 80 * size }, () => {
    const created_at = at();
    const status = pick(STATUSES);
    const ended = ['completed', 'failed', 'cancelled'].includes(status);
    return {
      tenant: pick(TENANTS),
      job_type: pick(JOB_TYPES),
      status,
      attempts: status === 'pending' ? 0 : 1 + Math.floor(next() * 3),
      created_at,
      updated_at: ended ? new Date(created_at.getTime() + Math.floor(next() * 30 * 3600 * 1000)) : created_at,
      // Some pending jobs are due, some wait for later (a fixed future, so "due" does not depend on when the test runs).
      run_at: next() < 0.5 ? created_at : new Date(Date.UTC(2099, 0, 1)),
    };
  });
  return { searches, documents, chunks, jobs };
}

/**
 * Writes the activity as the owner, its timestamps as given: the timestamps
 * trigger is set aside for the while (its own statements, outside the
 * transaction of the rows: ALTER TABLE waits for no pending foreign-key checks
 * then; nothing else writes to a test's own database meanwhile).
 */
export async function writeActivity(owner: pg.Client, activity: Activity): Promise<void> {
  const json = (rows: unknown[]) => JSON.stringify(rows);
  const vectors = rng(99);
  const triggers = (how: 'enable' | 'disable') =>
    owner.query(`alter table sheratan.documents ${how} trigger _100_timestamps; alter table sheratan.jobs ${how} trigger _100_timestamps`);
  await triggers('disable');
  try {
    await owner.query('begin');
    await owner.query(
      `insert into sheratan.search_logs (tenant, created_at, filters, k, result_count, top_similarity, latency_ms, query_text)
       select tenant, created_at, filters, k, result_count, top_similarity, latency_ms, query_text
         from jsonb_to_recordset($1::jsonb) as x(tenant text, created_at timestamptz, filters jsonb, k integer, result_count integer,
                                                  top_similarity double precision, latency_ms double precision, query_text text)`,
      [json(activity.searches)],
    );
    await owner.query(
      `insert into sheratan.documents (id, tenant, title, content, created_at, updated_at)
       select id, tenant, 'generated', content, created_at, created_at
         from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant text, content text, created_at timestamptz)`,
      [json(activity.documents)],
    );
    await owner.query(
      `insert into sheratan.document_chunks (tenant, document_id, chunk_index, created_at, content, embedding, embedding_model, token_count)
       select tenant, document_id, chunk_index, created_at, content, embedding::vector, model, token_count
         from jsonb_to_recordset($1::jsonb) as x(tenant text, document_id uuid, chunk_index integer, created_at timestamptz, content text,
                                                  embedding text, model text, token_count integer)`,
      [json(activity.chunks.map((c) => ({ ...c, embedding: c.embedded ? JSON.stringify(randomUnit(384, vectors)) : null })))],
    );
    await owner.query(
      `insert into sheratan.jobs (tenant, job_type, status, attempts, max_attempts, created_at, updated_at, run_at)
       select tenant, job_type, status, attempts, 5, created_at, updated_at, run_at
         from jsonb_to_recordset($1::jsonb) as x(tenant text, job_type text, status text, attempts integer, created_at timestamptz,
                                                  updated_at timestamptz, run_at timestamptz)`,
      [json(activity.jobs)],
    );
    await owner.query('commit');
  } catch (err) {
    await owner.query('rollback');
    throw err;
  } finally {
    await triggers('enable');
  }
}

// ---------------------------------------------------------------------------
// The figures, computed here.

function parts(d: Date, timeZone: string): Record<string, string> {
  const fmt = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' });
  return Object.fromEntries(fmt.formatToParts(d).map((p) => [p.type, p.value]));
}
/** The calendar day of `d` in `timeZone`, YYYY-MM-DD. */
export const dayIn = (d: Date, timeZone: string): string => {
  const p = parts(d, timeZone);
  return `${p.year}-${p.month}-${p.day}`;
};
/** The hour of `d` in `timeZone`, YYYY-MM-DDTHH (the views' hours printed with to_char in that zone). */
export const hourIn = (d: Date, timeZone: string): string => {
  const p = parts(d, timeZone);
  return `${p.year}-${p.month}-${p.day}T${p.hour}`;
};

/** percentile_cont: linear interpolation between the closest ranks. */
export function percentileCont(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

export function searchMode(filters: Record<string, unknown>): string {
  if (typeof filters.mode === 'string') return filters.mode;
  return 'diversity' in filters ? 'mmr' : 'vector';
}
export function sourceFilter(filters: Record<string, unknown>): string | null {
  return Array.isArray(filters.sources) ? [...(filters.sources as string[])].sort().join(',') : null;
}

export type Figures = Record<string, number | string | null>;

function group<T>(rows: T[], key: (row: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const k = key(row);
    out.set(k, [...(out.get(k) ?? []), row]);
  }
  return out;
}

function searchFigures(rows: SearchRow[]): Figures {
  const latencies = rows.map((r) => r.latency_ms);
  const zero = rows.filter((r) => r.result_count === 0).length;
  return {
    searches: rows.length,
    zero_result_searches: zero,
    zero_result_rate: zero / rows.length,
    mean_latency_ms: mean(latencies),
    p50_latency_ms: percentileCont(latencies, 0.5),
    p95_latency_ms: percentileCont(latencies, 0.95),
    p99_latency_ms: percentileCont(latencies, 0.99),
    max_latency_ms: Math.max(...latencies),
    mean_top_similarity: mean(rows.flatMap((r) => (r.top_similarity === null ? [] : [r.top_similarity]))),
    mean_result_count: mean(rows.map((r) => r.result_count)),
  };
}

/** search_daily (by = 'day') or search_hourly (by = 'hour'), keyed `period|mode|source_filter`. */
export function expectedSearches(a: Activity, tenant: string, timeZone: string, by: 'day' | 'hour'): Map<string, Figures> {
  const period = by === 'day' ? dayIn : hourIn;
  const rows = a.searches.filter((s) => s.tenant === tenant);
  const groups = group(rows, (s) => `${period(s.created_at, timeZone)}|${searchMode(s.filters)}|${sourceFilter(s.filters) ?? ''}`);
  return new Map([...groups].map(([k, g]) => [k, searchFigures(g)]));
}

/** ingest_daily keyed by day. */
export function expectedIngest(a: Activity, tenant: string, timeZone: string): Map<string, Figures> {
  const out = new Map<string, Figures>();
  const at = (day: string): Figures => {
    if (!out.has(day)) out.set(day, { documents: 0, document_bytes: 0, chunks: 0, embedded_chunks: 0, chunk_bytes: 0, chunk_tokens: null });
    return out.get(day)!;
  };
  for (const d of a.documents.filter((x) => x.tenant === tenant)) {
    const f = at(dayIn(d.created_at, timeZone));
    f.documents = (f.documents as number) + 1;
    f.document_bytes = (f.document_bytes as number) + Buffer.byteLength(d.content);
  }
  for (const c of a.chunks.filter((x) => x.tenant === tenant)) {
    const f = at(dayIn(c.created_at, timeZone));
    f.chunks = (f.chunks as number) + 1;
    f.embedded_chunks = (f.embedded_chunks as number) + (c.embedded ? 1 : 0);
    f.chunk_bytes = (f.chunk_bytes as number) + Buffer.byteLength(c.content);
    if (c.token_count !== null) f.chunk_tokens = ((f.chunk_tokens as number | null) ?? 0) + c.token_count;
  }
  return out;
}

/** embedding_coverage keyed by model ('' for null). */
export function expectedCoverage(a: Activity, tenant: string): Map<string, Figures> {
  const groups = group(
    a.chunks.filter((c) => c.tenant === tenant),
    (c) => c.model ?? '',
  );
  return new Map(
    [...groups].map(([k, g]) => {
      const embedded = g.filter((c) => c.embedded).length;
      return [k, { chunks: g.length, embedded, missing: g.length - embedded, coverage: embedded / g.length }];
    }),
  );
}

/** job_daily keyed `day|job_type`. */
export function expectedJobDaily(a: Activity, tenant: string, timeZone: string): Map<string, Figures> {
  const counts = new Map<string, Record<'enqueued' | 'completed' | 'failed' | 'cancelled', number>>();
  const attempts = new Map<string, number[]>();
  const at = (key: string) => {
    if (!counts.has(key)) counts.set(key, { enqueued: 0, completed: 0, failed: 0, cancelled: 0 });
    return counts.get(key)!;
  };
  for (const j of a.jobs.filter((x) => x.tenant === tenant)) {
    at(`${dayIn(j.created_at, timeZone)}|${j.job_type}`).enqueued += 1;
    if (j.status === 'completed' || j.status === 'failed' || j.status === 'cancelled') {
      const key = `${dayIn(j.updated_at, timeZone)}|${j.job_type}`;
      at(key)[j.status] += 1;
      if (j.status !== 'cancelled') attempts.set(key, [...(attempts.get(key) ?? []), j.attempts]);
    }
  }
  return new Map(
    [...counts].map(([k, f]) => {
      const ran = f.completed + f.failed;
      return [k, { ...f, failure_rate: ran ? f.failed / ran : null, mean_attempts: mean(attempts.get(k) ?? []) }];
    }),
  );
}

/** job_queue keyed by job_type (oldest_due_seconds depends on the clock: left out). */
export function expectedJobQueue(a: Activity, tenant: string, now: Date): Map<string, Figures> {
  const groups = group(
    a.jobs.filter((j) => j.tenant === tenant),
    (j) => j.job_type,
  );
  return new Map(
    [...groups].map(([k, g]) => {
      const n = (s: string) => g.filter((j) => j.status === s).length;
      return [
        k,
        {
          pending: n('pending'),
          due: g.filter((j) => j.status === 'pending' && j.run_at <= now).length,
          running: n('running'),
          completed: n('completed'),
          failed: n('failed'),
          cancelled: n('cancelled'),
        },
      ];
    }),
  );
}

/**
 * Rows read from a view, as `key → figures` with numbers for numeric text
 * (bigint and numeric arrive as strings), to compare with the expectations.
 */
export function keyed(rows: Array<Record<string, unknown>>, key: (row: Record<string, unknown>) => string, columns: string[]): Map<string, Figures> {
  return new Map(
    rows.map((r) => [
      key(r),
      Object.fromEntries(columns.map((c) => [c, r[c] === null || r[c] === undefined ? null : typeof r[c] === 'number' ? r[c] : Number(r[c])])) as Figures,
    ]),
  );
}

/** Expects the same keys and, per key, every figure equal (floats to 9 significant digits). */
export function expectFigures(actual: Map<string, Figures>, expected: Map<string, Figures>, what: string): void {
  expect({ what, keys: [...actual.keys()].sort() }).toEqual({ what, keys: [...expected.keys()].sort() });
  for (const [k, want] of expected) {
    const got = actual.get(k)!;
    for (const [column, value] of Object.entries(want)) {
      const g = got[column];
      if (value === null || typeof value === 'string') {
        expect({ what, k, column, value: g }).toEqual({ what, k, column, value });
      } else {
        const close = typeof g === 'number' && Math.abs(g - value) <= 1e-9 * Math.max(1, Math.abs(value));
        if (!close) expect({ what, k, column, value: g }).toEqual({ what, k, column, value });
      }
    }
  }
}

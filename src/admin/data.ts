// What the operator page shows, read from the database. Why these
// connections: the page is for the store's operator, so it shows every
// tenant, which no API role may read (row-level security scopes the
// reporting views to one tenant). Rather than read the tables on the owner
// connection for a web request, it calls the admin functions of
// sheratan_private (security definer aggregates, migrations/current.sql,
// "the operator page's store-wide analytics"), which only the gateway's own
// login may execute, on a small pool of that login, and only after the
// admin token's check (auth.ts, routes.ts). The ANN index's size and use
// come from the catalog (no tenant data); the job counts from
// job_status_counts(), as /metrics reads them. Doctor's checks run as
// `npm run doctor` does (the owner connection: they read the catalog and
// the migrations' state), at most once per DOCTOR_CACHE_MS.
import pg from 'pg';
import type { Config } from '../config/config.ts';
import type { Database } from '../database/connect.ts';
import { ANN_INDEX } from '../database/ann-index.ts';
import { runDoctor, type Check } from '../operations/doctor.ts';

export type { Check };

/** Doctor's checks are reused this long: they open connections and run graphile-migrate's status. */
const DOCTOR_CACHE_MS = 30_000;

export interface SeriesRow {
  bucket: Date;
  searches: number;
  zeroResultSearches: number;
  p50LatencyMs: number;
  p95LatencyMs: number;
  p99LatencyMs: number;
  meanResultCount: number;
}

export interface Analytics {
  since: Date;
  bucketSeconds: number;
  series: SeriesRow[];
  resultCounts: Array<{ resultCount: number; searches: number }>;
  topSources: Array<{ source: string; searches: number; zeroResultSearches: number }>;
  zeroResultQueries: Array<{ tenant: string | null; queryText: string; searches: number; lastAt: Date }>;
}

export interface AnnIndexFacts {
  name: string;
  method: string;
  options: string[];
  sizeBytes: number;
  scans: number;
}

/** What the page's live panel shows, sent again every few seconds (routes.ts). */
export interface LiveFigures {
  at: string;
  jobs: Record<string, number>;
  embedding: { pendingDocuments: number; embeddedDocuments: number; failedDocuments: number; chunks: number; embeddedChunks: number };
  annIndex: AnnIndexFacts | null;
}

export interface AdminData {
  analytics(hours: number): Promise<Analytics>;
  live(): Promise<LiveFigures>;
  doctor(): Promise<Check[]>;
  close(): Promise<void>;
}

/** The bucket for a window: about 48 points, whole minutes, at least one. */
export function bucketSecondsFor(hours: number): number {
  return Math.max(60, Math.round((hours * 3600) / 48 / 60) * 60);
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

export function createAdminData(config: Config, db: Database): AdminData {
  // The gateway's login (never the owner) for tenant data; two connections are plenty for one operator.
  const pool = new pg.Pool({ connectionString: db.authUrl, max: 2, connectionTimeoutMillis: config.poolTimeoutMs, application_name: 'sheratan-admin' });
  pool.on('error', () => undefined);
  let doctorCache: { at: number; checks: Promise<Check[]> } | null = null;

  return {
    async analytics(hours) {
      const bucketSeconds = bucketSecondsFor(hours);
      const client = await pool.connect();
      try {
        // One snapshot for the four reads, and the request's own time limit.
        await client.query(`begin isolation level repeatable read read only`);
        await client.query(`select set_config('statement_timeout', $1, true)`, [`${config.statementTimeoutMs}ms`]);
        const since = (await client.query<{ since: Date }>(`select now() - make_interval(hours => $1) as since`, [hours])).rows[0]!.since;
        const series = await client.query('select * from sheratan_private.admin_search_series($1, $2)', [since, bucketSeconds]);
        const counts = await client.query('select * from sheratan_private.admin_result_counts($1)', [since]);
        const sources = await client.query('select * from sheratan_private.admin_top_sources($1, 10)', [since]);
        const zero = await client.query('select * from sheratan_private.admin_zero_result_queries($1, 20)', [since]);
        await client.query('commit');
        return {
          since,
          bucketSeconds,
          series: series.rows.map((r) => ({
            bucket: r.bucket,
            searches: num(r.searches),
            zeroResultSearches: num(r.zero_result_searches),
            p50LatencyMs: num(r.p50_latency_ms),
            p95LatencyMs: num(r.p95_latency_ms),
            p99LatencyMs: num(r.p99_latency_ms),
            meanResultCount: num(r.mean_result_count),
          })),
          resultCounts: counts.rows.map((r) => ({ resultCount: num(r.result_count), searches: num(r.searches) })),
          topSources: sources.rows.map((r) => ({ source: r.source, searches: num(r.searches), zeroResultSearches: num(r.zero_result_searches) })),
          zeroResultQueries: zero.rows.map((r) => ({ tenant: r.tenant, queryText: r.query_text, searches: num(r.searches), lastAt: r.last_at })),
        };
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },

    async live() {
      const [jobs, embedding, index] = await Promise.all([
        pool.query<{ status: string; jobs: string }>('select status, jobs from sheratan_private.job_status_counts()'),
        pool.query('select * from sheratan_private.admin_embedding_progress()'),
        pool.query(
          `select i.relname as name, am.amname as method, coalesce(i.reloptions, '{}') as options,
                  pg_relation_size(i.oid) as size_bytes, coalesce(s.idx_scan, 0) as scans
             from pg_class i
             join pg_am am on am.oid = i.relam
             join pg_namespace n on n.oid = i.relnamespace
             left join pg_stat_user_indexes s on s.indexrelid = i.oid
            where n.nspname = 'sheratan' and i.relname = $1`,
          [ANN_INDEX],
        ),
      ]);
      const e = embedding.rows[0] ?? {};
      const ix = index.rows[0];
      return {
        at: new Date().toISOString(),
        jobs: Object.fromEntries(jobs.rows.map((r) => [r.status, Number(r.jobs)])),
        embedding: {
          pendingDocuments: num(e.pending_documents),
          embeddedDocuments: num(e.embedded_documents),
          failedDocuments: num(e.failed_documents),
          chunks: num(e.chunks),
          embeddedChunks: num(e.embedded_chunks),
        },
        annIndex: ix ? { name: ix.name, method: ix.method, options: ix.options, sizeBytes: num(ix.size_bytes), scans: num(ix.scans) } : null,
      };
    },

    doctor() {
      if (!doctorCache || Date.now() - doctorCache.at > DOCTOR_CACHE_MS) {
        const checks = runDoctor(config, db);
        doctorCache = { at: Date.now(), checks };
        // A failed run is not kept: the next page asks again.
        checks.catch(() => {
          doctorCache = null;
        });
      }
      return doctorCache.checks;
    },

    async close() {
      await pool.end();
    },
  };
}

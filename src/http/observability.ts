// Prometheus metrics (/metrics) and one JSON log line per request with a
// request id (taken from X-Request-Id when it is sane, generated otherwise).
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type pg from 'pg';
import client from 'prom-client';
import { inRequest, log } from '../config/log.ts';
import { beginRequest } from './request-state.ts';
import type { ReplicaState } from '../database/replica.ts';

const MAX_OPERATION_LABELS = 200;
/** Operation names longer than this are one label, 'other', like names beyond the count. */
const MAX_OPERATION_LABEL_LENGTH = 64;

export interface Metrics {
  registry: client.Registry;
  middleware(req: Request, res: Response, next: NextFunction): void;
  handler(req: Request, res: Response): Promise<void>;
}

export function createMetrics(options: {
  pools: Record<string, pg.Pool>;
  /** Job counts by status across tenants (an aggregate, no rows). */
  jobCounts: () => Promise<Record<string, number>>;
  /** METRICS_TOKEN: when set, /metrics answers only `Authorization: Bearer <token>`. */
  token?: string;
  /** The gateway's paths: the only endpoint label values; any other path is 'other' (a 404 flood must not grow /metrics). */
  endpoints: readonly string[];
  /** READ_DATABASE_URL: the replica's state at each scrape (replicaLag), when there is one. */
  replica?: () => Promise<ReplicaState>;
  /** WORKERS=N: every worker's metrics, aggregated (workers.ts); without it /metrics shows this process's. */
  aggregate?: (registry: client.Registry) => () => Promise<string>;
}): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'sheratan_' });
  const seenOperations = new Set<string>();
  const endpoints = new Set(options.endpoints);
  const operationLabel = (name: string | undefined): string => {
    if (!name) return 'unknown';
    if (name.length > MAX_OPERATION_LABEL_LENGTH || !/^[_A-Za-z]\w*$/.test(name)) return 'other';
    if (seenOperations.has(name)) return name;
    if (seenOperations.size >= MAX_OPERATION_LABELS) return 'other';
    seenOperations.add(name);
    return name;
  };

  const requests = new client.Counter({
    name: 'sheratan_http_requests_total',
    help: 'HTTP requests by endpoint, GraphQL operation and status code',
    labelNames: ['endpoint', 'operation', 'status'],
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: 'sheratan_http_request_duration_seconds',
    help: 'HTTP request latency by endpoint and GraphQL operation',
    labelNames: ['endpoint', 'operation'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const search = new client.Histogram({
    name: 'sheratan_search_duration_seconds',
    help: 'Latency of GraphQL requests that search (searchDocumentChunks, hybridSearchDocumentChunks, similarChunks, similarDocuments)',
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  new client.Gauge({
    name: 'sheratan_db_pool_connections',
    help: 'Database pool connections by pool and state (in_use, idle, waiting)',
    labelNames: ['pool', 'state'],
    registers: [registry],
    collect() {
      for (const [name, pool] of Object.entries(options.pools)) {
        this.set({ pool: name, state: 'in_use' }, pool.totalCount - pool.idleCount);
        this.set({ pool: name, state: 'idle' }, pool.idleCount);
        this.set({ pool: name, state: 'waiting' }, pool.waitingCount);
      }
    },
  });
  new client.Gauge({
    name: 'sheratan_jobs',
    help: 'Jobs by status, all tenants',
    labelNames: ['status'],
    registers: [registry],
    // The database's counts, the same from every worker (WORKERS=N): not summed.
    aggregator: 'max',
    async collect() {
      const counts = await options.jobCounts();
      for (const status of ['pending', 'running', 'completed', 'failed', 'cancelled']) this.set({ status }, counts[status] ?? 0);
    },
  });

  const replica = options.replica;
  if (replica) {
    // One query per scrape for both gauges (a scrape collects them concurrently); a replica that is down
    // makes a figure, never a failed scrape. The same replica from every worker (WORKERS=N): not summed.
    // Shared only while in flight: the next scrape asks again.
    let asked: Promise<ReplicaState | null> | undefined;
    const state = (): Promise<ReplicaState | null> =>
      (asked ??= replica()
        .catch(() => null)
        .finally(() => (asked = undefined)));
    new client.Gauge({
      name: 'sheratan_replica_up',
      help: 'Whether READ_DATABASE_URL answered as a standby at this scrape (1) or not (0)',
      registers: [registry],
      aggregator: 'min',
      async collect() {
        this.set((await state())?.standby ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'sheratan_replica_lag_bytes',
      help: 'WAL bytes the read replica (READ_DATABASE_URL) has still to replay of what the primary has written; NaN when it did not answer as a standby',
      registers: [registry],
      aggregator: 'max',
      async collect() {
        const now = await state();
        this.set(now?.standby ? now.lagBytes : NaN);
      },
    });
  }
  const allWorkers = options.aggregate?.(registry);
  return {
    registry,
    middleware(req, res, next) {
      const given = req.get('x-request-id');
      const { requestId, facts } = beginRequest(req, given && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID());
      res.set('X-Request-Id', requestId);
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const path = req.baseUrl + req.path;
        if (path === '/metrics') return;
        const endpoint = endpoints.has(path) ? path : 'other';
        const operation = operationLabel(facts.operation);
        requests.inc({ endpoint, operation, status: String(res.statusCode) });
        duration.observe({ endpoint, operation }, seconds);
        if (facts.search) search.observe(seconds);
        log('info', 'request', {
          requestId,
          method: req.method,
          path: clip(path),
          status: res.statusCode,
          operation: facts.operation && clip(facts.operation),
          durationMs: Math.round(seconds * 1e4) / 10,
        });
      });
      inRequest(requestId, next);
    },
    async handler(req, res) {
      // With METRICS_TOKEN set, only a scraper that presents it may read the figures.
      if (options.token && !sameSecret(req.get('authorization') ?? '', `Bearer ${options.token}`)) {
        res.status(401).set('WWW-Authenticate', 'Bearer realm="metrics"').type('text/plain').send('metrics need Authorization: Bearer <METRICS_TOKEN>\n');
        return;
      }
      try {
        res.set('Content-Type', registry.contentType).send(await (allWorkers ? allWorkers() : registry.metrics()));
      } catch (err) {
        res
          .status(500)
          .type('text/plain')
          .send(`metrics unavailable: ${(err as Error).message}\n`);
      }
    },
  };
}

/** A client-chosen string as a log field: at most 200 characters. */
const clip = (s: string): string => (s.length > 200 ? `${s.slice(0, 200)}…` : s);

/** Compares without telling by its timing how much of a secret matched. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** Job counts by status across tenants, from sheratan_private.job_status_counts() (an aggregate, no rows). */
export async function jobCountsFrom(pool: pg.Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; jobs: string }>('select status, jobs from sheratan_private.job_status_counts()');
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.jobs)]));
}

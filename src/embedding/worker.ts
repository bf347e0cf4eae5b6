// The embedding worker: runs the `embed_document` jobs the triggers queue
// (migrations/current.sql, section text-pipeline) whenever text changes, for
// every tenant, with the configured provider. One runs inside the gateway
// (EMBEDDING_WORKER_CONCURRENCY, 0: none) and `npm run worker` runs more on
// other machines; any number may run at once (claims never overlap).
//
// It logs in as the gateway's login (the authenticator) and works each job as
// the API role within the job's tenant, under row-level security, through
// functions that do only this work: no privileged connection. The one thing
// it reads across tenants is which tenants have work due, and how much
// (sheratan_private.embedding_work).
//
// Fair share: each free slot takes the tenant with the fewest jobs running in
// this process (then the one served longest ago), and a job does one batch of
// at most EMBEDDING_BATCH_SIZE chunks before it goes back in the queue, so one
// tenant's 10,000 chunks do not keep another's one chunk waiting. Each
// tenant's provider calls are bounded by EMBEDDING_TENANT_RATE (worker-rate.ts).
//
// A job's pass: claim it; if the document's content changed, make its chunks
// again (chunker.ts) in one short transaction; read a batch of chunks without
// vectors; embed them with no transaction open (the embedded engine's one
// backend serves requests meanwhile); store the vectors whose text did not
// change meanwhile and end the pass in one short transaction. A failure is
// retried after EMBEDDING_RETRY_BASE_MS × 2^(attempt − 1) (or the provider's
// Retry-After), and after EMBEDDING_JOB_ATTEMPTS the document is FAILED with
// the error.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { APP_ROLE } from '../config/roles.ts';
import type { EmbeddingProvider } from './provider.ts';
import { chunkText } from './chunker.ts';
import { ProviderPause, type TenantRate } from './worker-rate.ts';

export const EMBED_JOB_TYPE = 'embed_document';
/** The channel the triggers notify when they queue embedding work. */
export const EMBED_CHANNEL = 'sheratan_embedding';
/** Who the worker is in the audit trail (jwt.claims.sub). */
export const WORKER_SUB = 'embedding-worker';

export interface EmbeddingWorkerOptions {
  /** The gateway's login (AUTH_DATABASE_URL): the worker becomes the API role per tenant. */
  authUrl: string;
  provider: EmbeddingProvider;
  /** Jobs at once (EMBEDDING_WORKER_CONCURRENCY). */
  concurrency: number;
  /** Chunks per pass (EMBEDDING_BATCH_SIZE). */
  batchSize: number;
  chunkMaxChars: number;
  chunkOverlapChars: number;
  /** MAX_DOCUMENT_CHARS: a longer document fails at once, with the limit in its error. */
  maxDocumentChars: number;
  rate: TenantRate;
  /** Shared with the requests of the process: the provider's Retry-After holds everyone off. */
  pause?: ProviderPause;
  /** EMBEDDING_RETRY_BASE_MS. */
  retryBaseMs: number;
  /** EMBEDDING_JOB_ATTEMPTS: declared to the database for the jobs the triggers queue. */
  jobAttempts: number;
  /** JOB_LOCK_TIMEOUT (s): a claimed job not finished in this long is another worker's. */
  jobLockTimeoutS?: number;
  /** How often to look for work without a notification (ms). */
  pollMs?: number;
  workerId?: string;
  log?: (level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown>) => void;
}

export interface WorkerStats {
  passes: number;
  embedded: number;
  failures: number;
  /** Passes per tenant (for tests and logs). */
  byTenant: Map<string, number>;
}

interface Job {
  id: string;
  attempts: number;
  payload: { documentId?: string; reembed?: boolean };
}

const MAX_RETRY_MS = 5 * 60_000;

export class EmbeddingWorker {
  readonly workerId: string;
  readonly stats: WorkerStats = { passes: 0, embedded: 0, failures: 0, byTenant: new Map() };
  private readonly pool: pg.Pool;
  private readonly options: EmbeddingWorkerOptions;
  private readonly running = new Map<string, number>();
  private readonly served = new Map<string, number>();
  private serial = 0;
  private stopping = false;
  private readonly wakers = new Set<() => void>();
  private readonly abort = new AbortController();
  private listener: pg.Client | null = null;
  private slots: Promise<void>[] = [];
  private readonly pause: ProviderPause;

  constructor(options: EmbeddingWorkerOptions) {
    this.options = options;
    this.pause = options.pause ?? new ProviderPause();
    this.workerId = options.workerId ?? `embed-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.pool = new pg.Pool({ connectionString: options.authUrl, max: Math.max(1, options.concurrency) + 1, application_name: 'sheratan-embedding-worker' });
    this.pool.on('error', () => undefined);
  }

  /** Declares the provider to the database (jobs are queued from now on) and starts the slots. */
  async start(): Promise<void> {
    await this.pool.query('select sheratan_private.set_vectorizer($1, $2, $3)', [
      this.options.provider.model,
      this.options.provider.dimension,
      this.options.jobAttempts,
    ]);
    await this.listen().catch((err: Error) => this.log('warn', 'embedding worker: no LISTEN, polling only', { error: err.message }));
    this.slots = Array.from({ length: Math.max(1, this.options.concurrency) }, () => this.slot());
  }

  /** Stops taking work; resolves when the passes under way have ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.wake();
    await Promise.all(this.slots);
    await this.listener?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }

  /** Looks for work now (a notification, or a caller that just queued some). */
  wake(): void {
    for (const w of [...this.wakers]) w();
  }

  private log(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
    this.options.log?.(level, message, { workerId: this.workerId, ...fields });
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.authUrl, application_name: 'sheratan-embedding-listener' });
    client.on('error', () => undefined);
    client.on('notification', () => this.wake());
    await client.connect();
    await client.query(`listen ${EMBED_CHANNEL}`);
    this.listener = client;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  /** Waits `ms` unless the worker stops meanwhile (a wake does not cut it short). */
  private sleepFor(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.abort.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The tenant this slot serves next: due work, fewest running here, then served longest ago, with tokens to spend first. */
  private async pickTenant(): Promise<string | null> {
    const { rows } = await this.pool.query<{ tenant: string; due: string }>('select tenant, due from sheratan_private.embedding_work()');
    if (rows.length === 0) return null;
    const rate = this.options.rate;
    const batch = this.options.batchSize;
    const ranked = rows
      .map((r) => r.tenant)
      .sort(
        (a, b) =>
          Number(rate.waitMs(a, batch) > 0) - Number(rate.waitMs(b, batch) > 0) ||
          (this.running.get(a) ?? 0) - (this.running.get(b) ?? 0) ||
          (this.served.get(a) ?? -1) - (this.served.get(b) ?? -1),
      );
    const tenant = ranked[0]!;
    this.served.set(tenant, ++this.serial);
    return tenant;
  }

  private async slot(): Promise<void> {
    const poll = this.options.pollMs ?? 1000;
    while (!this.stopping) {
      let tenant: string | null = null;
      try {
        tenant = await this.pickTenant();
        if (tenant === null) {
          await this.sleep(poll);
          continue;
        }
        this.running.set(tenant, (this.running.get(tenant) ?? 0) + 1);
        const worked = await this.pass(tenant);
        if (!worked) await this.sleep(Math.min(poll, 200));
      } catch (err) {
        if (this.stopping) break;
        this.log('warn', 'embedding worker: a pass failed', { tenant, error: (err as Error).message });
        await this.sleep(poll);
      } finally {
        if (tenant !== null) {
          const n = (this.running.get(tenant) ?? 1) - 1;
          if (n <= 0) this.running.delete(tenant);
          else this.running.set(tenant, n);
        }
      }
    }
  }

  /** Runs `fn` in one transaction as the API role within `tenant`. */
  private async asTenant<T>(tenant: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // The pool does not listen for a checked-out client's 'error' event (a
    // terminated backend emits one), and an unheard one ends the process: the
    // query in progress fails by itself, and the pool drops the dead client.
    const onError = (): void => undefined;
    client.on('error', onError);
    try {
      await client.query('begin');
      await client.query(
        "select set_config('role', $1, true), set_config('jwt.claims.tenant', $2, true), set_config('jwt.claims.sub', $3, true), set_config('jwt.claims.role', $1, true), set_config('sheratan.job_lock_timeout', $4, true)",
        [APP_ROLE, tenant, WORKER_SUB, String(this.options.jobLockTimeoutS ?? 600)],
      );
      const result = await fn(client);
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.off('error', onError);
      client.release();
    }
  }

  /** One pass of one job of `tenant`; false when there was none to claim. */
  async pass(tenant: string): Promise<boolean> {
    const provider = this.options.provider;
    const claimed = await this.asTenant(tenant, async (c) => {
      const { rows } = await c.query<{ id: string | null; attempts: number; payload: Job['payload'] }>(
        'select id, attempts, payload from sheratan.claim_job($1, $2)',
        [this.workerId, [EMBED_JOB_TYPE]],
      );
      const job = rows[0];
      if (!job?.id) return null;
      const docId = job.payload?.documentId;
      const doc = docId
        ? (await c.query<{ content: string; chunks_stale: boolean }>('select content, chunks_stale from sheratan.documents where id = $1', [docId])).rows[0]
        : undefined;
      return { job: job as Job, doc };
    });
    if (!claimed) return false;
    const { job, doc } = claimed;
    this.stats.passes++;
    this.stats.byTenant.set(tenant, (this.stats.byTenant.get(tenant) ?? 0) + 1);
    const docId = job.payload.documentId!;
    const reembed = job.payload.reembed === true;
    const finish = (c: pg.PoolClient, error: string | null, retryMs: number | null, giveUp = false) =>
      c.query<{ outcome: string }>('select sheratan_private.finish_embedding_job($1, $2, $3, $4, $5) as outcome', [
        job.id,
        this.workerId,
        error,
        retryMs,
        giveUp,
      ]);
    try {
      if (doc?.chunks_stale) {
        if (doc.content.length > this.options.maxDocumentChars) {
          const error = `the document's content has ${doc.content.length} characters, above the limit of ${this.options.maxDocumentChars} (MAX_DOCUMENT_CHARS): it is not chunked or embedded`;
          await this.asTenant(tenant, (c) => finish(c, error, null, true));
          return true;
        }
        const chunks = chunkText(doc.content, { maxChars: this.options.chunkMaxChars, overlapChars: this.options.chunkOverlapChars });
        await this.asTenant(tenant, (c) => c.query('select sheratan_private.rechunk_document($1, $2, $3)', [docId, JSON.stringify(chunks), doc.content]));
      }
      const todo = doc
        ? await this.asTenant(
            tenant,
            async (c) =>
              (
                await c.query<{ id: string; content: string }>(
                  `select id, content from sheratan.document_chunks
                  where document_id = $1 and (embedding is null or ($2 and embedding_model is distinct from $3))
                  order by chunk_index limit $4`,
                  [docId, reembed, provider.model, this.options.batchSize],
                )
              ).rows,
          )
        : [];
      const usable = todo.filter((t) => /\S/.test(t.content));
      let vectors: number[][] = [];
      if (usable.length > 0) {
        await this.options.rate.take(tenant, usable.length, this.abort.signal);
        // The provider said when to come back (Retry-After): wait for it rather than spend an attempt.
        const wait = this.pause.remainingMs();
        if (wait > 0) await this.sleepFor(wait);
        try {
          vectors = await provider.embed(
            usable.map((t) => t.content),
            { signal: this.abort.signal },
          );
        } catch (err) {
          this.pause.note(err);
          throw err;
        }
      }
      const outcome = await this.asTenant(tenant, async (c) => {
        if (usable.length > 0) {
          await c.query('select sheratan_private.store_chunk_vectors($1, $2, $3, $4)', [
            usable.map((t) => t.id),
            usable.map((t) => t.content),
            vectors.map((v) => JSON.stringify(v)),
            provider.model,
          ]);
        }
        const blank = todo.length - usable.length;
        // A chunk with nothing but whitespace cannot be embedded: the document fails and says which.
        if (blank > 0) return (await finish(c, `${blank} chunk(s) have no text to embed (empty or only whitespace)`, null, true)).rows[0]!.outcome;
        return (await finish(c, null, null)).rows[0]!.outcome;
      });
      this.stats.embedded += usable.length;
      if (outcome === 'more') this.wake();
      return true;
    } catch (err) {
      if (this.stopping && this.abort.signal.aborted) {
        // Shutting down: the job goes back at once, without counting as a failure.
        await this.asTenant(tenant, (c) =>
          c.query("select sheratan_private.finish_embedding_job($1, $2, 'the worker stopped', 0)", [job.id, this.workerId]),
        ).catch(() => undefined);
        return true;
      }
      this.stats.failures++;
      const e = err as Error & { retryAfterMs?: number; code?: string };
      const retryMs = Math.min(MAX_RETRY_MS, e.retryAfterMs ?? this.options.retryBaseMs * 2 ** Math.max(0, job.attempts - 1));
      const message = e.code ? `${e.code}: ${e.message}` : e.message;
      this.log('warn', 'embedding job failed', { tenant, jobId: job.id, documentId: docId, attempt: job.attempts, error: message });
      await this.asTenant(tenant, (c) => finish(c, message, retryMs)).catch((finishErr: Error) =>
        this.log('error', 'embedding job: could not record the failure', { jobId: job.id, error: finishErr.message }),
      );
      return true;
    }
  }
}

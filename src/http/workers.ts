// WORKERS=N: N gateway processes serving one port (node:cluster: the primary
// holds the listening socket and hands connections out in turn), so that a
// gateway uses every core. The primary serves no request: it starts the
// workers, restarts one that dies, stops them in order on SIGTERM/SIGINT,
// replaces them one at a time on SIGHUP (each new one listening before its
// predecessor drains), and gathers /metrics from all of them.
//
// The database: on a server every worker opens its own pools, and the pool
// settings are the whole gateway's (DB_POOL_SIZE and DB_MAX_OVERFLOW shared
// out, so N workers hold no more connections than one did). Embedded, the
// engine lives in one process, the primary's: it starts and migrates it, and
// the workers reach it through its socket like any client (no in-process
// channel), so the one backend still runs one statement at a time.
import cluster, { type Worker } from 'node:cluster';
import client from 'prom-client';
import { assertReadyToServe, type Config } from '../config/config.ts';
import { log } from '../config/log.ts';
import { openDatabase, type Database } from '../database/connect.ts';
import { migrateToHead, structuredMigrateLogger } from '../database/migrations.ts';

/** A worker's share of the pool settings: N workers together hold at most what DB_POOL_SIZE + DB_MAX_OVERFLOW allow. */
export function workerShare(config: Config): Config {
  if (config.workers <= 1) return config;
  // The connections one worker may hold at most (at least one), then how many of them it keeps.
  const most = Math.max(1, Math.floor((config.poolSize + config.poolMaxOverflow) / config.workers));
  const poolSize = Math.min(most, Math.max(1, Math.floor(config.poolSize / config.workers)));
  return { ...config, poolSize, poolMaxOverflow: most - poolSize };
}

/** True in a process the primary started (WORKERS > 1). */
export const isGatewayWorker = (): boolean => cluster.isWorker;

// Messages between the primary and the workers (on the cluster's IPC channel).
type ToPrimary = { sheratan: 'metrics'; id: number };
type ToWorker =
  { sheratan: 'metrics-json'; id: number } | { sheratan: 'metrics-all'; id: number; metrics: client.MetricObjectWithValues<client.MetricValue<string>>[][] };
const isMessage = (m: unknown): m is { sheratan: string; id: number } => typeof m === 'object' && m !== null && 'sheratan' in m;

/**
 * In a worker: answers the primary's requests for this worker's metrics, and
 * returns the text of every worker's metrics aggregated (counters and
 * histograms summed; a gauge of the database's, such as sheratan_jobs, says how
 * to aggregate itself).
 */
export function workerMetrics(registry: client.Registry): () => Promise<string> {
  const waiting = new Map<number, (all: client.MetricObjectWithValues<client.MetricValue<string>>[][]) => void>();
  let next = 0;
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    const message = m as ToWorker;
    if (message.sheratan === 'metrics-json') {
      void registry.getMetricsAsJSON().then((metrics) => process.send?.({ sheratan: 'metrics-json', id: message.id, metrics }));
    } else if (message.sheratan === 'metrics-all') {
      waiting.get(message.id)?.(message.metrics);
      waiting.delete(message.id);
    }
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the workers did not answer within 5 s'));
      }, 5000);
      waiting.set(id, (all) => {
        clearTimeout(timer);
        client.AggregatorRegistry.aggregate(all).metrics().then(resolve, reject);
      });
      process.send?.({ sheratan: 'metrics', id } satisfies ToPrimary);
    });
}

/** The primary: answers a worker's request for every worker's metrics. */
function gatherMetrics(): void {
  let next = 0;
  const replies = new Map<number, { expected: number; got: client.MetricObjectWithValues<client.MetricValue<string>>[][]; done: () => void }>();
  cluster.on('message', (worker: Worker, m: unknown) => {
    if (!isMessage(m)) return;
    const message = m as { sheratan: string; id: number; metrics?: client.MetricObjectWithValues<client.MetricValue<string>>[] };
    if (message.sheratan === 'metrics') {
      const asker = worker;
      const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w.isConnected());
      const id = ++next;
      const entry = {
        expected: live.length,
        got: [] as client.MetricObjectWithValues<client.MetricValue<string>>[][],
        done: () => {
          replies.delete(id);
          if (asker.isConnected()) asker.send({ sheratan: 'metrics-all', id: message.id, metrics: entry.got } satisfies ToWorker);
        },
      };
      replies.set(id, entry);
      for (const w of live) w.send({ sheratan: 'metrics-json', id } satisfies ToWorker);
      // A worker that is stopping may not answer: what came in within 2 s is the answer.
      setTimeout(() => replies.has(id) && entry.done(), 2000).unref();
    } else if (message.sheratan === 'metrics-json' && message.metrics) {
      const entry = replies.get(message.id);
      if (!entry) return;
      entry.got.push(message.metrics);
      if (entry.got.length >= entry.expected) entry.done();
    }
  });
}

/**
 * The primary of WORKERS=N: resolves once every worker has stopped after
 * SIGTERM/SIGINT (exit code 1 if one could not start or stop cleanly).
 */
export async function runPrimary(config: Config, onServing?: () => void): Promise<void> {
  // Production without its secrets stops here, before anything opens or any worker starts.
  assertReadyToServe(config);
  // The signals first: one that came during start-up would otherwise end the primary with its workers orphaned.
  let stopSignal: ((signal: string) => void) | undefined;
  const stopRequested = new Promise<string>((resolve) => (stopSignal = resolve));
  process.once('SIGTERM', () => stopSignal?.('SIGTERM'));
  process.once('SIGINT', () => stopSignal?.('SIGINT'));
  // Until every first worker listens, a death is a failed start (the process exits 1 naming it), not
  // something to restart, and a SIGHUP waits.
  let serving = false;
  let replaceRequested = false;
  process.on('SIGHUP', () => (serving ? replaceAll() : (replaceRequested = true)));

  // Embedded: one engine, the primary's, migrated before any worker serves.
  let db: Database | undefined;
  if (!config.databaseUrl) {
    db = await openDatabase(config, { purpose: 'gateway', serve: true });
    await migrateToHead(config, db, structuredMigrateLogger);
  }
  gatherMetrics();
  let stopping = false;
  let restarts: number[] = [];
  const replaced = new WeakSet<Worker>();
  const listening = (worker: Worker): Promise<void> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`gateway worker ${worker.id} exited with code ${code} before it listened`));
      worker.once('listening', () => {
        worker.off('exit', onExit);
        resolve();
      });
      worker.once('exit', onExit);
    });
  const exited = (worker: Worker): Promise<void> => new Promise((resolve) => (worker.isDead() ? resolve() : worker.once('exit', () => resolve())));
  const start = (): Worker => {
    const worker = cluster.fork();
    worker.on('exit', (code, signal) => {
      if (stopping || !serving || replaced.has(worker)) return;
      // A worker that died: another takes its place; more than five deaths within a minute stop the gateway.
      const now = Date.now();
      restarts = [...restarts.filter((t) => now - t < 60_000), now];
      log('error', 'gateway worker died; starting another', { worker: worker.id, code, signal });
      if (restarts.length > 5) {
        log('error', 'gateway workers keep dying: stopping', { deaths: restarts.length });
        process.exitCode = 1;
        stopSignal?.('worker deaths');
        return;
      }
      start();
    });
    return worker;
  };
  const live = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
  const stopAll = async (): Promise<void> => {
    stopping = true;
    const all = live();
    // Each worker drains its requests (SHUTDOWN_GRACE_MS) as a single gateway would.
    for (const w of all) w.process.kill('SIGTERM');
    await Promise.all(all.map(exited));
    if (all.some((w) => w.process.exitCode !== 0 && w.process.exitCode !== null)) process.exitCode = 1;
    await db?.close();
  };

  const first = Array.from({ length: config.workers }, start);
  const started = await Promise.race([Promise.all(first.map(listening)).then(() => true), stopRequested.then(() => false)]).catch(async (err: unknown) => {
    await stopAll();
    throw err;
  });
  serving = true;
  if (started) {
    log('info', 'gateway workers listening', { workers: config.workers, port: config.port, pid: process.pid });
    onServing?.();
  }

  // SIGHUP: one at a time, the new worker listens before the old one drains, so the port never goes unserved.
  let rolling: Promise<void> = Promise.resolve();
  function replaceAll(): void {
    rolling = rolling.then(async () => {
      for (const old of live()) {
        if (stopping) return;
        const fresh = start();
        await listening(fresh);
        replaced.add(old);
        old.process.kill('SIGTERM');
        await exited(old);
        log('info', 'gateway worker replaced', { old: old.id, new: fresh.id });
      }
    });
  }
  if (replaceRequested) replaceAll();

  const signal = await stopRequested;
  log('info', 'shutting down the gateway workers', { signal, workers: live().length });
  await rolling.catch(() => undefined);
  await stopAll().catch((err: unknown) => {
    log('error', 'shutdown failed', { error: String(err) });
    process.exitCode = 1;
  });
}

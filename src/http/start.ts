// A running gateway, as `npm start` and `npm run dev` make one: open the
// database (serving the embedded engine when there is no DATABASE_URL), apply
// migrations on the embedded database, build the schema, serve HTTP; `stop`
// shuts all of it down in order (the commands call it on SIGTERM/SIGINT).
import { assertReadyToServe, type Config } from '../config/config.ts';
import { openDatabase, type Database } from '../database/connect.ts';
import { effectiveJwtSecret } from '../database/jwt-secret.ts';
import { createGateway, type Gateway } from './gateway.ts';
import { migrateToHead, structuredMigrateLogger } from '../database/migrations.ts';
import { log, routeConsoleToLog, setLogLevel } from '../config/log.ts';
import { startAutoAnalyze, type AutoAnalyze } from '../database/auto-analyze.ts';
import type { SchemaReloader } from '../graphql/schema-reload.ts';
import { assertDimension, inspectVector, searchSettings } from '../database/vector-column.ts';
import { checkEmbeddingProvider } from '../embedding/check.ts';
import { EmbeddingError } from '../embedding/errors.ts';
import { createTextServices, type TextServices } from '../embedding/worker-context.ts';

/** How long start-up waits for the embedding provider's answer to one text (a local model's first call loads it). */
const PROVIDER_CHECK_MS = 15_000;

export interface RunningGateway {
  url: string;
  db: Database;
  gateway: Gateway;
  config: Config;
  /** Text in, text out: the provider, the query cache, the built-in embedding worker. */
  text: TextServices;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  port?: number;
  host?: string;
  /** Watch mode: rebuild the schema whenever this reloader fires. */
  reloader?: SchemaReloader;
  /**
   * Routes of a box above this one (the operator page, src/admin/routes.ts),
   * added before the gateway listens; what it returns is called first on stop.
   */
  addRoutes?: (gateway: Gateway, db: Database, config: Config) => (() => Promise<void>) | undefined;
  /** A worker of WORKERS=N (workers.ts): the embedded engine is the primary's, already migrated; this process attaches to it. */
  attach?: boolean;
}

export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<RunningGateway> {
  // Before anything opens: a production gateway without its secrets must not come up looking healthy.
  assertReadyToServe(config);
  setLogLevel(config.logLevel);
  routeConsoleToLog();
  const db = await openDatabase(config, { purpose: options.attach ? 'gateway worker' : 'gateway', serve: !options.attach });
  let gateway: Gateway | undefined;
  let text: TextServices | undefined;
  let closeRoutes: (() => Promise<void>) | undefined;
  let analyzer: AutoAnalyze | undefined;
  try {
    if (db.backend === 'embedded' && !options.attach) {
      await migrateToHead(config, db, structuredMigrateLogger);
    }
    const vector = await inspectVector(db.authUrl);
    text = createTextServices(config);
    // The provider's vectors must fit the column before anything serves: a mismatch refuses to start with one
    // line naming both numbers (checked before VECTOR_DIMENSION, whose default follows the provider, so the
    // message names the real cause). A provider that does not answer now only warns: text that arrives is
    // accepted PENDING and the workers retry, as they would if it went down later.
    await checkEmbeddingProvider(text.provider, vector.dimension, { timeoutMs: PROVIDER_CHECK_MS }).catch((err: unknown) => {
      if (!(err instanceof EmbeddingError) || err.code === 'EMBEDDING_DIMENSION_MISMATCH') throw err;
      log('warn', `the embedding provider is not answering at start; text ingest waits PENDING until it does: ${err.message}`, { code: err.code });
    });
    assertDimension(config, vector);
    const effective: Config = { ...config, jwtSecret: effectiveJwtSecret(config) };
    gateway = await createGateway(
      effective,
      db,
      vector,
      { ...searchSettings(config), 'sheratan.job_lock_timeout': String(config.jobLockTimeoutS) },
      options.reloader,
      text,
    );
    closeRoutes = options.addRoutes?.(gateway, db, effective);
    const port = options.port ?? config.port;
    const host = options.host ?? config.host;
    const url = await gateway.listen(port, host).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        throw new Error(`port ${port} on ${host} is already in use (EADDRINUSE); stop what listens there or set PORT`, { cause: err });
      if (err.code === 'EACCES') throw new Error(`not permitted to listen on port ${port} on ${host} (EACCES); choose a PORT above 1023`, { cause: err });
      throw err;
    });
    await text.startWorker(db.authUrl);
    // Statistics after bulk loads, so searches plan with the ANN index (auto-analyze.ts).
    analyzer = startAutoAnalyze(db.ownerUrl);
    const analyzing = analyzer;
    const running = gateway;
    const services = text;
    const routesClosing = closeRoutes;
    let stopping: Promise<void> | null = null;
    return {
      url,
      db,
      gateway: running,
      config: effective,
      text: services,
      stop: () =>
        (stopping ??= (async () => {
          // The embedding worker first: its passes end before the database goes.
          await services.close();
          await routesClosing?.();
          await running.close();
          await analyzing.stop();
          await db.close();
        })()),
    };
  } catch (err) {
    // Nothing may be left open (pools, schema builders, the engine): the process must be able to exit now
    // (db.close() ends graphile-migrate's pools before the engine).
    await text?.close().catch(() => undefined);
    await closeRoutes?.().catch(() => undefined);
    await gateway?.close().catch(() => undefined);
    await analyzer?.stop().catch(() => undefined);
    await db.close();
    throw err;
  }
}

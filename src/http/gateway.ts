// The HTTP gateway: express + grafserv serving the full API and the reporting
// schema, health endpoints, authentication, and a clean shutdown.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import pg from 'pg';
import { postgraphile, type PostGraphileInstance } from 'postgraphile';
import { grafserv } from 'postgraphile/grafserv/express/v4';
import type { Config } from '../config/config.ts';
import type { Database } from '../database/connect.ts';
import { AUTHENTICATOR_ROLE, READONLY_ROLE } from '../config/roles.ts';
import { authenticate, pgSettingsFor, type Claims } from './auth.ts';
import { makePreset } from '../graphql/preset.ts';
import { Admission } from './admission.ts';
import { makePipelinedWithPgClient, poolTransport } from '../graphql/pipelined-client.ts';
import { createMetrics, factsOfRequestContext } from './observability.ts';
import type { SchemaReloader } from '../graphql/schema-reload.ts';
import { AcceptedDimensions, type VectorInfo } from '../database/vector-column.ts';
import { log } from '../config/log.ts';

export const GRAPHQL_PATH = '/graphql';
export const REPORTING_PATH = '/reporting/graphql';
export const GRAPHIQL_PATH = '/graphiql';
const HEALTH_PATH = '/healthz';
const READY_PATH = '/readyz';
const METRICS_PATH = '/metrics';
// How soon a running gateway follows a model switch (embeddings:migrate).
const DIMENSIONS_REFRESH_MS = 2000;

interface AuthedRequest extends Request {
  sheratanClaims?: Claims | null;
}

export interface Gateway {
  app: express.Express;
  server: Server;
  api: PostGraphileInstance;
  reporting: PostGraphileInstance;
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

function makePool(url: string, config: Config, name: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: config.poolSize + config.poolMaxOverflow,
    connectionTimeoutMillis: config.poolTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: name,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  return pool;
}

/** Rejects bad tokens with 401/403 before any GraphQL work; stores the claims otherwise. */
function authMiddleware(config: Config) {
  return (req: AuthedRequest, res: Response, next: NextFunction): void => {
    const result = authenticate(req.headers.authorization, config);
    if (!result.ok) {
      res
        .status(result.status)
        .set('WWW-Authenticate', `Bearer error="invalid_token"`)
        .json({ errors: [{ message: result.message, extensions: { code: result.code } }] });
      return;
    }
    req.sheratanClaims = result.claims;
    next();
  };
}

/** `extraSettings` are added to every request's transaction (ANN accuracy settings). */
/** Holds a pool slot for the whole request, or answers 503 with Retry-After when none frees up in time. */
function admissionMiddleware(admission: Admission) {
  return async (_req: Request, res: Response, next: NextFunction): Promise<void> => {
    const release = await admission.acquire();
    if (!release) {
      res
        .status(503)
        .set('Retry-After', '1')
        .json({
          errors: [
            {
              message:
                `the database connection pool is exhausted: all ${admission.max} connections (DB_POOL_SIZE + DB_MAX_OVERFLOW) ` +
                `stayed busy for ${admission.timeoutMs} ms (DB_POOL_TIMEOUT_MS); retry shortly`,
              extensions: { code: 'POOL_EXHAUSTED' },
            },
          ],
        });
      return;
    }
    res.once('close', release);
    next();
  };
}

/**
 * `vector` is what start-up read of the embedding columns (inspectVector);
 * the Vector scalar's dimensions start from it and then follow a model
 * switch without a restart.
 */
export async function createGateway(
  config: Config,
  db: Database,
  vector: VectorInfo,
  extraSettings: Record<string, string> = {},
  reloader?: SchemaReloader,
): Promise<Gateway> {
  const apiPool = makePool(db.authUrl, config, 'sheratan-gateway');
  const dimensions = new AcceptedDimensions(vector);
  const refreshDimensions = setInterval(() => {
    dimensions.refresh(apiPool).catch(() => undefined);
  }, DIMENSIONS_REFRESH_MS).unref();
  const readPool = db.readUrl === db.authUrl ? apiPool : makePool(db.readUrl, config, 'sheratan-reporting');
  // GraphQL statements go one round trip each (pipelined-client.ts): in the
  // process running the embedded engine over its in-process channel (as the
  // same authenticator login), on a server over the pools' connections. The
  // pools also serve health checks and metrics.
  const engine = db.engine?.transport?.(AUTHENTICATOR_ROLE, config.poolTimeoutMs);
  const direct = makePipelinedWithPgClient(engine ?? poolTransport(apiPool));
  const readDirect = readPool === apiPool ? direct : engine ? undefined : makePipelinedWithPgClient(poolTransport(readPool));
  const claimsOf = (req: unknown): Claims | null => (req as AuthedRequest | undefined)?.sheratanClaims ?? null;

  const api = postgraphile(
    makePreset({
      config,
      pool: apiPool,
      ...(direct ? { withPgClient: direct } : {}),
      readOnly: false,
      graphqlPath: GRAPHQL_PATH,
      graphiqlPath: GRAPHIQL_PATH,
      reloader,
      acceptedDimensions: dimensions.get,
      factsOf: factsOfRequestContext,
      pgSettings: (req) => ({ ...extraSettings, ...pgSettingsFor(claimsOf(req), config) }),
    }),
  );
  const reporting = postgraphile(
    makePreset({
      config,
      pool: readPool,
      ...(readDirect ? { withPgClient: readDirect } : {}),
      readOnly: true,
      graphqlPath: REPORTING_PATH,
      reloader,
      acceptedDimensions: dimensions.get,
      factsOf: factsOfRequestContext,
      // Reporting always reads as sheratan_readonly, whatever role the token names.
      pgSettings: (req) => ({ ...extraSettings, ...pgSettingsFor(claimsOf(req), config, READONLY_ROLE) }),
    }),
  );

  const app = express();
  app.disable('x-powered-by');
  // No response is for caches or for content sniffing: they carry tenants' data.
  app.use((_req, res, next) => {
    res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    next();
  });
  const server = createServer(app);
  let schemaReady = false;

  const metrics = createMetrics({
    endpoints: [GRAPHQL_PATH, REPORTING_PATH, GRAPHIQL_PATH, HEALTH_PATH, READY_PATH, METRICS_PATH],
    ...(config.metricsToken ? { token: config.metricsToken } : {}),
    pools: readPool === apiPool ? { api: apiPool } : { api: apiPool, read: readPool },
    async jobCounts() {
      const { rows } = await apiPool.query<{ status: string; jobs: string }>('select status, jobs from sheratan_private.job_status_counts()');
      return Object.fromEntries(rows.map((r) => [r.status, Number(r.jobs)]));
    },
  });
  app.use(metrics.middleware);
  app.get(METRICS_PATH, (req, res) => metrics.handler(req, res));

  app.get(HEALTH_PATH, (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get(READY_PATH, async (_req, res) => {
    try {
      await apiPool.query('select 1');
      if (!schemaReady) throw new Error('the GraphQL schema is still being built');
      res.json({ status: 'ready' });
    } catch (err) {
      res.status(503).json({ status: 'unavailable', reason: (err as Error).message });
    }
  });
  app.use([GRAPHQL_PATH, REPORTING_PATH], authMiddleware(config));
  // One admission per pool: requests beyond its size wait DB_POOL_TIMEOUT_MS at most.
  const apiAdmission = new Admission(config.poolSize + config.poolMaxOverflow, config.poolTimeoutMs);
  const readAdmission = readPool === apiPool ? apiAdmission : new Admission(apiAdmission.max, config.poolTimeoutMs);
  app.use(GRAPHQL_PATH, admissionMiddleware(apiAdmission));
  app.use(REPORTING_PATH, admissionMiddleware(readAdmission));

  const apiServ = api.createServ(grafserv);
  const reportingServ = reporting.createServ(grafserv);
  await apiServ.addTo(app, server, false);
  await reportingServ.addTo(app, server, false);
  await Promise.all([api.getSchema(), reporting.getSchema()]);
  schemaReady = true;

  let closing: Promise<void> | null = null;
  return {
    app,
    server,
    api,
    reporting,
    async listen(port = config.port, host = config.host) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    },
    close() {
      closing ??= (async () => {
        // Stop accepting, let in-flight requests finish (for SHUTDOWN_GRACE_MS at
        // most), then release everything.
        const closed = server.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
        server.closeIdleConnections();
        const cut = setTimeout(() => {
          log('warn', 'shutdown grace period over: closing the connections still open', { graceMs: config.shutdownGraceMs });
          server.closeAllConnections();
        }, config.shutdownGraceMs);
        await closed;
        clearTimeout(cut);
        clearInterval(refreshDimensions);
        await Promise.all([api.release(), reporting.release()]);
        await apiPool.end();
        if (readPool !== apiPool) await readPool.end();
      })();
      return closing;
    },
  };
}

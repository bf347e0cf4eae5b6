// The HTTP gateway: express + grafserv serving the two GraphQL endpoints
// (endpoints.ts), health (health.ts) and metrics (observability.ts), in this
// order for every request: request id and metrics, then authentication,
// then the body (body.ts), then admission, then GraphQL. `close` shuts it down in order.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import express from 'express';
import type { PostGraphileInstance } from 'postgraphile';
import { grafserv } from 'postgraphile/grafserv/express/v4';
import type { Config } from '../config/config.ts';
import { log } from '../config/log.ts';
import type { Database } from '../database/connect.ts';
import type { VectorInfo } from '../database/vector-column.ts';
import type { SchemaReloader } from '../graphql/schema-reload.ts';
import type { TextServices } from '../embedding/worker-context.ts';
import { Admission, admissionMiddleware } from './admission.ts';
import { authenticationMiddleware } from './authentication-middleware.ts';
import { bodyMiddleware } from './body.ts';
import { createEndpoints, GRAPHIQL_PATH, GRAPHQL_PATH, REPORTING_PATH } from './endpoints.ts';
import { addHealthRoutes, HEALTH_PATH, READY_PATH } from './health.ts';
import { currentMaintenance } from '../database/maintenance.ts';
import { maintenanceGate } from './maintenance-gate.ts';
import { createMetrics, jobCountsFrom } from './observability.ts';
import { replicaLag } from '../database/replica.ts';
import { isGatewayWorker, workerMetrics } from './workers.ts';
import { servePipelinesInTurn } from './pipelining.ts';
import { createLiveServer, type LiveServer } from './live.ts';
import type { LiveEvents } from '../graphql/live-events.ts';

export { GRAPHIQL_PATH, GRAPHQL_PATH, REPORTING_PATH };
const METRICS_PATH = '/metrics';

/**
 * Sockets one client address may hold open at once; more are closed as they
 * arrive. Without it one anonymous client opening idle sockets took every
 * file descriptor the process had (19,900 sockets: every other client's
 * connection was reset until the headers timeout freed them, and again as
 * soon as it reconnected). A reverse proxy is one address: 512 is far above
 * what a proxy's keep-alive pool holds, and a request beyond the database
 * pool waits for admission whatever its socket.
 */
export const MAX_CONNECTIONS_PER_ADDRESS = 512;

/** How much longer than advertised an idle keep-alive socket stays open (Node's default: 1 s). */
export const KEEP_ALIVE_GRACE_MS = 5_000;

/** Holds each remote address to `max` open sockets (the 'connection' event runs before any byte is read). */
function limitConnectionsPerAddress(server: Server, max: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = (open.get(address) ?? 0) + 1;
    if (count > max) {
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}

export interface Gateway {
  app: express.Express;
  server: Server;
  api: PostGraphileInstance;
  reporting: PostGraphileInstance;
  /** Subscriptions over graphql-ws on /graphql (live.ts), and the events they listen to. */
  live: LiveServer;
  liveEvents: LiveEvents;
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

/** See createEndpoints for `vector`, `extraSettings`, `reloader` and `text`. */
export async function createGateway(
  config: Config,
  db: Database,
  vector: VectorInfo,
  extraSettings: Record<string, string> = {},
  reloader?: SchemaReloader,
  text?: TextServices,
): Promise<Gateway> {
  const endpoints = createEndpoints(config, db, vector, extraSettings, reloader, text);
  const { api, reporting, apiPool, readPool } = endpoints;

  const app = express();
  app.disable('x-powered-by');
  // No response is for caches or for content sniffing: they carry tenants' data.
  app.use((_req, res, next) => {
    res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    next();
  });
  // A socket's pipelined requests reach express one at a time, at most MAX_PIPELINED_REQUESTS deep (pipelining.ts).
  // An idle keep-alive socket is closed KEEP_ALIVE_GRACE_MS later than the
  // "Keep-Alive: timeout=5" the answers advertise: a client whose timers run
  // late (a busy process) may still send on a socket it believes open, and
  // would get ECONNRESET for a request the server never read.
  const server = createServer({ keepAliveTimeoutBuffer: KEEP_ALIVE_GRACE_MS }, servePipelinesInTurn(app));
  // Node's defaults (5 minutes for a request) let slow clients hold sockets for long.
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = Math.max(config.requestTimeoutMs, config.headersTimeoutMs);
  limitConnectionsPerAddress(server, MAX_CONNECTIONS_PER_ADDRESS);
  let schemaReady = false;

  const metrics = createMetrics({
    endpoints: [GRAPHQL_PATH, REPORTING_PATH, GRAPHIQL_PATH, HEALTH_PATH, READY_PATH, METRICS_PATH],
    ...(config.metricsToken ? { token: config.metricsToken } : {}),
    pools: readPool === apiPool ? { api: apiPool } : { api: apiPool, read: readPool },
    jobCounts: () => jobCountsFrom(apiPool),
    ...(readPool !== apiPool ? { replica: () => replicaLag(apiPool, readPool) } : {}),
    ...(isGatewayWorker() ? { aggregate: workerMetrics } : {}),
  });
  app.use(metrics.middleware);
  app.get(METRICS_PATH, (req, res) => metrics.handler(req, res));
  // Embedded: long work recorded in the data directory (index:tune) answers /readyz at once (database/maintenance.ts).
  addHealthRoutes(app, apiPool, () => schemaReady, config.databaseUrl ? undefined : () => currentMaintenance(config.dataDir));
  app.use([GRAPHQL_PATH, REPORTING_PATH], authenticationMiddleware(config));
  // The body is read (bounded in size and time) before a request may hold a pool slot.
  app.use([GRAPHQL_PATH, REPORTING_PATH], bodyMiddleware(config));
  // Embedded: during recorded maintenance a request would wait behind it; it is told so at once (maintenance-gate.ts).
  if (!config.databaseUrl)
    app.use(
      [GRAPHQL_PATH, REPORTING_PATH],
      maintenanceGate(() => currentMaintenance(config.dataDir)),
    );
  // One admission per pool: requests beyond its size wait DB_POOL_TIMEOUT_MS at most, each client key in turn.
  const apiAdmission = new Admission(config.poolSize + config.poolMaxOverflow, config.poolTimeoutMs);
  const readAdmission = readPool === apiPool ? apiAdmission : new Admission(apiAdmission.max, config.poolTimeoutMs);
  app.use(GRAPHQL_PATH, admissionMiddleware(apiAdmission));
  app.use(REPORTING_PATH, admissionMiddleware(readAdmission));

  const apiServ = api.createServ(grafserv);
  await apiServ.addTo(app, server, false);
  // Subscriptions: our socket server (authentication at connection_init, limits) on grafserv's graphql-ws configuration.
  const live = createLiveServer(apiServ, config);
  server.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://x').pathname === GRAPHQL_PATH) live.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  await reporting.createServ(grafserv).addTo(app, server, false);
  await Promise.all([api.getSchema(), reporting.getSchema()]);
  schemaReady = true;

  let closing: Promise<void> | null = null;
  return {
    app,
    server,
    api,
    reporting,
    live,
    liveEvents: endpoints.live,
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
        await live.close();
        const cut = setTimeout(() => {
          log('warn', 'shutdown grace period over: closing the connections still open', { graceMs: config.shutdownGraceMs });
          server.closeAllConnections();
        }, config.shutdownGraceMs);
        await closed;
        clearTimeout(cut);
        await endpoints.close();
      })();
      return closing;
    },
  };
}

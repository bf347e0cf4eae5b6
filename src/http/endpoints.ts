// The gateway's two GraphQL endpoints, each a PostGraphile instance on its
// own pool: the API (SheratanPreset, as the caller's role) and reporting
// (ReportingPreset, always as sheratan_readonly). Their statements go one
// round trip each (graphql/pipelined-client.ts): in the process running the
// embedded engine over its in-process channel (as the same authenticator
// login), on a server over the pools' connections. The pools also serve
// health checks and metrics.
import pg from 'pg';
import { postgraphile, type PostGraphileInstance } from 'postgraphile';
import type { Config } from '../config/config.ts';
import { APP_ROLE, AUTHENTICATOR_ROLE, READONLY_ROLE } from '../config/roles.ts';
import type { Database } from '../database/connect.ts';
import { AcceptedDimensions, type VectorInfo } from '../database/vector-column.ts';
import { endpointPreset } from '../graphql/endpoint-preset.ts';
import { makePipelinedWithPgClient, poolTransport } from '../graphql/pipelined-client.ts';
import type { SchemaReloader } from '../graphql/schema-reload.ts';
import { ReportingPreset, SheratanPreset } from '../../plugins/preset.ts';
import { graphqlContext, isRequestSettings } from './graphql-context.ts';
import { withTextContext, type TextServices } from '../embedding/worker-context.ts';
import { LiveEvents } from '../graphql/live-events.ts';
import { loadTrustedDocuments } from '../graphql/trusted-documents.ts';
import { log } from '../config/log.ts';
import { currentMaintenance } from '../database/maintenance.ts';
import { maintenanceNotice } from './maintenance-gate.ts';

export const GRAPHQL_PATH = '/graphql';
export const REPORTING_PATH = '/reporting/graphql';
export const GRAPHIQL_PATH = '/graphiql';
// How soon a running gateway follows a model switch (embeddings:migrate).
const DIMENSIONS_REFRESH_MS = 2000;

export interface Endpoints {
  api: PostGraphileInstance;
  reporting: PostGraphileInstance;
  apiPool: pg.Pool;
  /** The reporting pool: `apiPool` itself unless READ_DATABASE_URL names a replica. */
  readPool: pg.Pool;
  /** The live events the API's subscriptions listen to (one LISTEN connection, made at the first subscription). */
  live: LiveEvents;
  close(): Promise<void>;
}

function makePool(url: string, config: Config, name: string, options?: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    ...(options ? { options } : {}),
    max: config.poolSize + config.poolMaxOverflow,
    connectionTimeoutMillis: config.poolTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: name,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Cancels the statements still running on `busy`'s connections (a server's
 * backends, by process id, from a connection of the same login). By the time
 * the endpoints close, every HTTP connection has ended or was cut when
 * SHUTDOWN_GRACE_MS ran out: what still runs belongs to a request nobody
 * waits for, and pool.end() would wait for it, holding the process open
 * until STATEMENT_TIMEOUT_MS, or forever when that is 0 (a request waiting
 * for a lock, say).
 */
async function cancelAbandoned(url: string, busy: Set<pg.PoolClient>): Promise<void> {
  const pids = [...busy].map((client) => (client as pg.PoolClient & { processID?: number | null }).processID).filter((pid) => typeof pid === 'number');
  if (pids.length === 0) return;
  log('warn', 'shutdown: cancelling the statements of requests that did not finish', { count: pids.length });
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select pg_cancel_backend(pid) from unnest($1::int[]) as pid', [pids]);
  } catch (err) {
    log('warn', 'shutdown: could not cancel the statements still running', { error: (err as Error).message });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * `vector` is what start-up read of the embedding columns (inspectVector):
 * the Vector scalar's dimensions start from it and then follow a model
 * switch without a restart. `extraSettings` go into every request's
 * transaction (the ANN accuracy settings). `text`: the embedder the
 * requests' contexts carry (search by text, ingest of text).
 */
export function createEndpoints(
  config: Config,
  db: Database,
  vector: VectorInfo,
  extraSettings: Record<string, string>,
  reloader?: SchemaReloader,
  text?: TextServices,
): Endpoints {
  // Behind a transaction-mode pooler the requests' statements go unnamed (poolTransport); LISTEN stays on authUrl.
  const apiPool = makePool(db.poolerUrl ?? db.authUrl, config, 'sheratan-gateway', db.apiOptions);
  // The connections requests hold (poolTransport's sessions), not every one checked out of the pool: PostGraphile's
  // watch and introspection, and the dimension refresh, hold some too, and theirs are no request's to cancel.
  const apiBusy = new Set<pg.PoolClient>();
  const dimensions = new AcceptedDimensions(vector);
  const refreshDimensions = setInterval(() => {
    dimensions.refresh(apiPool).catch(() => undefined);
  }, DIMENSIONS_REFRESH_MS).unref();
  const readPool = db.readUrl === db.authUrl ? apiPool : makePool(db.readUrl, config, 'sheratan-reporting');
  const readBusy = readPool === apiPool ? apiBusy : new Set<pg.PoolClient>();
  const engine = db.engine?.transport?.(AUTHENTICATOR_ROLE, config.poolTimeoutMs);
  const direct = makePipelinedWithPgClient(engine ?? poolTransport(apiPool, { namedStatements: !db.poolerUrl, busy: apiBusy }), isRequestSettings);
  const readDirect =
    readPool === apiPool ? direct : engine ? undefined : makePipelinedWithPgClient(poolTransport(readPool, { busy: readBusy }), isRequestSettings);
  const shared = {
    reloader,
    acceptedDimensions: dimensions.get,
    // Embedded: maintenance recorded in the data directory (a server has none: its index builds are CONCURRENTLY).
    ...(config.databaseUrl ? {} : { maintenance: () => maintenanceNotice(currentMaintenance(config.dataDir)) }),
  };
  const live = new LiveEvents({
    url: db.authUrl,
    maxQueued: config.liveMaxQueuedEvents,
    onError: (err) => log('warn', 'live events: the LISTEN connection failed', { error: err.message }),
  });
  const apiContext = withTextContext(graphqlContext(config, extraSettings), text);

  const api = postgraphile(
    endpointPreset(SheratanPreset, config, {
      ...shared,
      pool: apiPool,
      role: APP_ROLE,
      withPgClient: direct,
      graphqlPath: GRAPHQL_PATH,
      graphiqlPath: GRAPHIQL_PATH,
      context: (requestContext) => ({ ...apiContext(requestContext), sheratanLive: live }),
      // The apps' operations only; reporting tools write their own queries.
      ...(config.trustedDocuments ? { trustedDocuments: loadTrustedDocuments(config.trustedDocuments) } : {}),
    }),
  );
  const reporting = postgraphile(
    endpointPreset(ReportingPreset, config, {
      ...shared,
      pool: readPool,
      role: READONLY_ROLE,
      ...(readDirect ? { withPgClient: readDirect } : {}),
      graphqlPath: REPORTING_PATH,
      // Reporting always reads as sheratan_readonly, whatever role the token names.
      context: withTextContext(graphqlContext(config, extraSettings, READONLY_ROLE), text),
    }),
  );
  return {
    api,
    reporting,
    apiPool,
    readPool,
    live,
    async close() {
      clearInterval(refreshDimensions);
      await live.release();
      await Promise.all([api.release(), reporting.release()]);
      if (db.backend === 'server') {
        // Through a pooler the connections' process ids are the pooler's, not the server's: nothing to cancel by them.
        if (!db.poolerUrl) await cancelAbandoned(db.authUrl, apiBusy);
        if (readPool !== apiPool) await cancelAbandoned(db.readUrl, readBusy);
      }
      await apiPool.end();
      if (readPool !== apiPool) await readPool.end();
    },
  };
}

import { redact, type Config } from '../config/config.ts';
import { log } from '../config/log.ts';
import { APP_ROLE } from '../config/roles.ts';
import { GRAPHIQL_PATH } from '../http/gateway.ts';
import { startGateway } from '../http/start.ts';
import { mountAdminPage } from '../admin/routes.ts';
import { ADMIN_PATH } from '../admin/page.ts';
import { isGatewayWorker, runPrimary, workerShare } from '../http/workers.ts';
import { untilSignal, type Command } from './command.ts';

export const start: Command = {
  name: 'start',
  summary: 'serve GraphQL (on the embedded database unless DATABASE_URL is set)',
  usage: `npm start   serve GraphQL on PORT (default 5678): /graphql, /reporting/graphql, /healthz, /readyz, /metrics
  (and the operator page /admin when ADMIN_JWT_SECRET is set)

  Without DATABASE_URL the embedded database in SHERATAN_DATA_DIR is started and migrated.
  SIGTERM or SIGINT stops it in order (in-flight requests get SHUTDOWN_GRACE_MS).
  WORKERS=N serves the port from N processes (production's default on a server: one per core);
  SIGHUP then replaces them one at a time.
`,
  async run(config) {
    if (config.workers > 1 && !isGatewayWorker()) {
      await runPrimary(config, () => banner(config, `http://${config.host}:${config.port}`));
      log('info', 'stopped');
      return;
    }
    const worker = isGatewayWorker();
    try {
      await serve(config, worker);
    } finally {
      // A worker's channel to the primary would keep its process alive (after a failed start too); unref'd,
      // not disconnected, since a worker that disconnects exits 0 whatever its exit code.
      if (worker) process.channel?.unref();
    }
  },
};

/** One gateway process: the only one, or a worker of WORKERS=N. */
async function serve(config: Config, worker: boolean): Promise<void> {
  // The operator page (/admin) is mounted only when ADMIN_JWT_SECRET is set.
  const running = await startGateway(workerShare(config), { addRoutes: mountAdminPage, attach: worker });
  log('info', 'gateway listening', {
    graphql: `${running.url}/graphql`,
    reporting: `${running.url}/reporting/graphql`,
    ...(config.production ? {} : { graphiql: `${running.url}${GRAPHIQL_PATH}` }),
    ...(config.adminJwtSecret ? { admin: `${running.url}${ADMIN_PATH}` } : {}),
    database: running.db.backend === 'embedded' ? `embedded (${config.dataDir})` : redact(running.db.ownerUrl),
  });
  if (!worker) banner(config, running.url);
  await untilSignal(async (signal) => {
    log('info', 'shutting down', { signal });
    await running.stop().catch((err: unknown) => {
      log('error', 'shutdown failed', { error: String(err) });
      process.exitCode = 1;
    });
  });
  log('info', 'stopped');
}

/** Development's welcome: where GraphQL is served and how to get a token for Ruru. */
function banner(config: Config, url: string): void {
  if (config.production) return;
  process.stderr.write(
    `\nSheratan Store is serving ${url}/graphql\n` +
      `For a token to paste into Ruru's headers ({"Authorization": "Bearer <token>"}):\n` +
      `  npm run token -- --role ${APP_ROLE} --tenant demo --sub me\n\n`,
  );
}

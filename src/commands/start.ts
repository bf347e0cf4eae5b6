import { redact } from '../config/config.ts';
import { log } from '../config/log.ts';
import { APP_ROLE } from '../config/roles.ts';
import { GRAPHIQL_PATH } from '../http/gateway.ts';
import { startGateway } from '../http/start.ts';
import { mountAdminPage } from '../admin/routes.ts';
import { ADMIN_PATH } from '../admin/page.ts';
import { untilSignal, type Command } from './command.ts';

export const start: Command = {
  name: 'start',
  summary: 'serve GraphQL (on the embedded database unless DATABASE_URL is set)',
  usage: `npm start   serve GraphQL on PORT (default 5678): /graphql, /reporting/graphql, /healthz, /readyz, /metrics
  (and the operator page /admin when ADMIN_JWT_SECRET is set)

  Without DATABASE_URL the embedded database in SHERATAN_DATA_DIR is started and migrated.
  SIGTERM or SIGINT stops it in order (in-flight requests get SHUTDOWN_GRACE_MS).
`,
  async run(config) {
    // The operator page (/admin) is mounted only when ADMIN_JWT_SECRET is set.
    const running = await startGateway(config, { addRoutes: mountAdminPage });
    log('info', 'gateway listening', {
      graphql: `${running.url}/graphql`,
      reporting: `${running.url}/reporting/graphql`,
      ...(config.production ? {} : { graphiql: `${running.url}${GRAPHIQL_PATH}` }),
      ...(config.adminJwtSecret ? { admin: `${running.url}${ADMIN_PATH}` } : {}),
      database: running.db.backend === 'embedded' ? `embedded (${config.dataDir})` : redact(running.db.ownerUrl),
    });
    if (!config.production) {
      process.stderr.write(
        `\nSheratan Store is serving ${running.url}/graphql\n` +
          `For a token to paste into Ruru's headers ({"Authorization": "Bearer <token>"}):\n` +
          `  npm run token -- --role ${APP_ROLE} --tenant demo --sub me\n\n`,
      );
    }
    await untilSignal(async (signal) => {
      log('info', 'shutting down', { signal });
      await running.stop().catch((err: unknown) => {
        log('error', 'shutdown failed', { error: String(err) });
        process.exitCode = 1;
      });
    });
    log('info', 'stopped');
  },
};

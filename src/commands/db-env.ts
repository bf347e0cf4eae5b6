import { redact } from '../config/config.ts';
import { embeddedAddress, serverUrls } from '../database/connect.ts';
import { migrationPlaceholders } from '../database/migrations.ts';
import type { Command } from './command.ts';

const quote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;

/** graphile-migrate's own CLI loads this (NODE_OPTIONS): its `watch` refused on the embedded engine, one owner of current.sql on a server. */
const GUARD = new URL('../database/graphile-migrate-guard.mjs', import.meta.url).href;

export const dbEnv: Command = {
  name: 'db:env',
  summary: "export the connection strings and placeholders for graphile-migrate's own CLI",
  usage: `eval "$(npm run -s db:env)"   export DATABASE_URL, SHADOW_DATABASE_URL, ROOT_DATABASE_URL and the placeholders .gmrc reads,
                               for graphile-migrate's own CLI (status, migrate, commit, uncommit) and other tools;
                               and NODE_OPTIONS with --import of src/database/graphile-migrate-guard.mjs, which makes
                               graphile-migrate's watch one line and exit 1 on the embedded engine, and on a server
                               claims current.sql as npm run dev and db:watch do (it does nothing in other processes)
`,
  async run(config) {
    let urls: { ownerUrl: string; shadowUrl: string; rootUrl: string };
    if (config.databaseUrl) {
      urls = serverUrls({ ...config, databaseUrl: config.databaseUrl });
      process.stdout.write(`# the server database ${redact(urls.ownerUrl)}\n`);
    } else {
      const { engine, servedBy } = await embeddedAddress(config.dataDir, config.embeddedPort);
      urls = { ownerUrl: engine.url(), shadowUrl: engine.url(undefined, true), rootUrl: engine.url('postgres') };
      process.stdout.write(
        `# the embedded database in ${config.dataDir}: ${servedBy ? `served by process ${servedBy}` : 'nothing serves it right now'}; ` +
          'it answers while `npm start`, `npm run dev` or `npm run db:psql` runs (use `npm run db:watch`, not graphile-migrate watch)\n',
      );
    }
    const vars: Array<[string, string]> = [
      ['DATABASE_URL', urls.ownerUrl],
      ['SHADOW_DATABASE_URL', urls.shadowUrl],
      ['ROOT_DATABASE_URL', urls.rootUrl],
      ...Object.entries(migrationPlaceholders(config)).map(([k, v]): [string, string] => [k.slice(1), v]),
    ];
    process.stdout.write(vars.map(([k, v]) => `export ${k}=${quote(v)}\n`).join(''));
    // The guard, loaded into graphile-migrate's own CLI run from this shell (and nothing else): its `watch` is
    // refused in one line on the embedded engine (DATABASE_URL still this one), and on a server it claims
    // current.sql for the database as npm run dev and db:watch do (one process applies it on every save).
    process.stdout.write(
      (config.databaseUrl ? 'unset SHERATAN_EMBEDDED_DATABASE_URL\n' : `export SHERATAN_EMBEDDED_DATABASE_URL=${quote(urls.ownerUrl)}\n`) +
        `case " \${NODE_OPTIONS-} " in *' --import=${GUARD} '*) ;; *) export NODE_OPTIONS="\${NODE_OPTIONS:+$NODE_OPTIONS }--import=${GUARD}" ;; esac\n`,
    );
  },
};

import { redact } from '../config/config.ts';
import { serverUrls } from '../database/connect.ts';
import { migrationPlaceholders } from '../database/migrations.ts';
import { embeddedAddress } from '../embedded/index.ts';
import type { Command } from './command.ts';

const quote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;

/** graphile-migrate's own CLI loads this (NODE_OPTIONS) to refuse `watch` on the embedded engine in one line. */
const GUARD = new URL('../embedded/graphile-migrate-guard.mjs', import.meta.url).href;

export const dbEnv: Command = {
  name: 'db:env',
  summary: "export the connection strings and placeholders for graphile-migrate's own CLI",
  usage: `eval "$(npm run -s db:env)"   export DATABASE_URL, SHADOW_DATABASE_URL, ROOT_DATABASE_URL and the placeholders .gmrc reads,
                               for graphile-migrate's own CLI (status, migrate, commit, uncommit) and other tools
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
    if (!config.databaseUrl) {
      // graphile-migrate's watch cannot run on the engine: the guard, loaded into node processes of this
      // shell, makes `npx graphile-migrate watch` say so in one line when DATABASE_URL is still this one.
      process.stdout.write(
        `export SHERATAN_EMBEDDED_DATABASE_URL=${quote(urls.ownerUrl)}\n` +
          `case " \${NODE_OPTIONS-} " in *' --import=${GUARD} '*) ;; *) export NODE_OPTIONS="\${NODE_OPTIONS:+$NODE_OPTIONS }--import=${GUARD}" ;; esac\n`,
      );
    }
  },
};

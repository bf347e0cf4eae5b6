import { embeddedAddress } from '../database/connect.ts';
import type { Command } from './command.ts';

export const dbUrl: Command = {
  name: 'db:url',
  summary: "print the database's connection string",
  usage: `npm run db:url   print the owner's connection string: DATABASE_URL, or the embedded database's (stable across restarts)
`,
  async run(config) {
    if (config.databaseUrl) {
      process.stdout.write(`${config.databaseUrl}\n`);
      return;
    }
    // The embedded URL is the same across restarts; it works while something serves the engine.
    const { engine, servedBy } = await embeddedAddress(config.dataDir, config.embeddedPort);
    process.stdout.write(`${engine.url()}\n`);
    if (servedBy === undefined) {
      process.stderr.write(
        `(nothing is serving the embedded database in ${config.dataDir} right now: this URL works while \`npm start\`, \`npm run dev\` or \`npm run db:psql\` runs; its port stays the same across restarts, EMBEDDED_PORT chooses it)\n`,
      );
    }
  },
};

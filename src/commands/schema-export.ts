import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { projectRoot } from '../config/paths.ts';
import { migrateToHead } from '../database/migrations.ts';
import { exportSchemas } from '../graphql/export.ts';
import { usingDatabase, type Command } from './command.ts';

export const schemaExport: Command = {
  name: 'schema:export',
  summary: 'write schema.graphql and reporting.graphql',
  usage: `npm run schema:export   write both endpoints' sorted SDL to schema.graphql and reporting.graphql (the committed contract)
`,
  async run(config) {
    await usingDatabase(config, 'schema:export', async (db) => {
      if (db.backend === 'embedded') await migrateToHead(config, db);
      const { api, reporting } = await exportSchemas(config, db);
      await writeFile(path.join(projectRoot, 'schema.graphql'), api);
      await writeFile(path.join(projectRoot, 'reporting.graphql'), reporting);
      process.stdout.write('wrote schema.graphql and reporting.graphql\n');
    });
  },
};

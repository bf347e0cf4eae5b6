// Set-up shared by the tests that run the database commands as processes
// (cli-database.test.ts, cli-migration-history.test.ts): a new database, a
// copy of the project to run the CLI from (project-copy.ts: its current.sql
// and committed migrations are the test's own), migrated by `db:migrate`.
// On the embedded engine the test serves the data directory itself, once, and
// every command attaches to that engine, as commands do while `npm start`
// runs (an engine start per command would cost seconds each).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import { openDatabase, withPgClient, type Database } from '../../src/database/connect.ts';
import { backend, createTestDatabase, TEST_ENGINE_ENV, type TestDatabase } from './backend.ts';
import { copyProject, type ProjectCopy } from './project-copy.ts';

export interface CliDatabase {
  db: TestDatabase;
  project: ProjectCopy;
  /** The environment of every command. */
  env: Record<string, string>;
  /** One query's last result's first row, its values '|'-joined (booleans t/f), as the owner. */
  asOwner(sql: string): Promise<string>;
  /** The copy's committed migrations, sorted. */
  committedFiles(): string[];
  close(): Promise<void>;
}

/** Exit 0, or the test fails showing what the command said. */
export function succeeded(run: { code: number | null; output: string }): void {
  if (run.code !== 0) throw new Error(`exited ${run.code}:\n${run.output}`);
}

export async function startCliDatabase(purpose: string): Promise<CliDatabase> {
  const db = await createTestDatabase();
  const project = copyProject();
  const env = { ...db.env, LOG_LEVEL: 'silent' };
  let served: Database | undefined;
  const close = async (): Promise<void> => {
    await served?.close();
    project.remove();
    await db.drop();
  };
  try {
    if (backend === 'embedded') served = await openDatabase(parseConfig({ ...env, ...TEST_ENGINE_ENV }), { purpose, serve: true });
    succeeded(await project.run(['db:migrate'], env));
  } catch (err) {
    await close();
    throw err;
  }
  return {
    db,
    project,
    env,
    asOwner: (sql) =>
      withPgClient(served?.ownerUrl ?? db.ownerUrl!, async (c) => {
        const results = await c.query({ text: sql, rowMode: 'array' });
        const last = Array.isArray(results) ? results.at(-1) : results;
        return ((last.rows[0] ?? []) as unknown[]).map((v) => (typeof v === 'boolean' ? (v ? 't' : 'f') : String(v))).join('|');
      }),
    committedFiles: () => readdirSync(path.join(project.root, 'migrations', 'committed')).sort(),
    close,
  };
}

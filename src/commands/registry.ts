// The `sheratan` command line: every npm script is one of these commands,
// each in its own module. `sheratan <command> --help` prints its usage;
// `sheratan` alone (or --help) lists them.
import { ConfigError, loadConfig } from '../config/config.ts';
import { setLogLevel } from '../config/log.ts';
import type { Command } from './command.ts';
import { auditCleanup } from './audit-cleanup.ts';
import { backup, restore } from './backup.ts';
import { dbBootstrap } from './db-bootstrap.ts';
import { dbCommit, dbUncommit } from './db-commit.ts';
import { dbEnv } from './db-env.ts';
import { dbMigrate } from './db-migrate.ts';
import { dbPsql } from './db-psql.ts';
import { dbReportingLogin } from './db-reporting-login.ts';
import { dbReset } from './db-reset.ts';
import { dbStatus } from './db-status.ts';
import { dbUrl } from './db-url.ts';
import { dbWatch } from './db-watch.ts';
import { dev } from './dev.ts';
import { doctor } from './doctor.ts';
import { embeddingsMigrate } from './embeddings-migrate.ts';
import { indexTune } from './index-tune.ts';
import { schemaExport } from './schema-export.ts';
import { trustedDocuments } from './trusted-documents.ts';
import { start } from './start.ts';
import { token } from './token.ts';
import { worker } from './worker.ts';

const COMMANDS: readonly Command[] = [
  start,
  dev,
  dbMigrate,
  dbBootstrap,
  dbWatch,
  dbCommit,
  dbUncommit,
  dbReset,
  dbStatus,
  dbUrl,
  dbEnv,
  dbPsql,
  dbReportingLogin,
  token,
  schemaExport,
  trustedDocuments,
  auditCleanup,
  indexTune,
  embeddingsMigrate,
  worker,
  doctor,
  backup,
  restore,
];

const byName = new Map(COMMANDS.map((c) => [c.name, c]));

function list(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `usage: sheratan <command> [--help]  (npm run <command> -- …)\ncommands:\n${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}\n`;
}

const isHelp = (arg: string): boolean => arg === '--help' || arg === '-h';

/** Runs the command named by `argv`; resolves with the exit code. */
export async function runCommand(argv: readonly string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || isHelp(name)) {
    process.stdout.write(list());
    return 0;
  }
  const command = byName.get(name);
  if (!command) {
    process.stderr.write(`sheratan: unknown command "${name}"\n${list()}`);
    return 2;
  }
  if (args.some(isHelp)) {
    process.stdout.write(command.usage);
    return 0;
  }
  const config = loadConfig();
  setLogLevel(config.logLevel);
  try {
    return (await command.run(config, args)) ?? 0;
  } catch (err) {
    // node:util parseArgs' own errors (an unknown or malformed option) point to the usage.
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
      throw new ConfigError(`${(err as Error).message} (npm run ${name} -- --help)`);
    }
    throw err;
  }
}

// The `sheratan` command line; every npm script is one of these commands.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as gm from 'graphile-migrate';
import { ConfigError, loadConfig, redact, type Config } from '../config/config.ts';
import { openDatabase, serverUrls, withPgClient, type Database } from '../database/connect.ts';
import { embeddedAddress } from '../embedded/index.ts';
import { signToken } from '../http/auth.ts';
import { API_ROLES, APP_ROLE, READONLY_ROLE, type ApiRole } from '../config/roles.ts';
import {
  ensureRoles,
  migrateSettings,
  migrateToHead,
  migrationPlaceholders,
  migrationStatus,
  releaseMigratePools,
  resetBlocker,
  watchCurrent,
  withMigrationLock,
} from '../database/migrations.ts';
import { startGateway } from '../http/start.ts';
import { embeddingColumns } from '../database/vector-column.ts';
import { effectiveJwtSecret } from '../config/jwt-secret.ts';
import { SchemaReloader } from '../graphql/schema-reload.ts';
import { exportSchemas } from '../graphql/export.ts';
import { log, setLogLevel } from '../config/log.ts';
import { GRAPHIQL_PATH } from '../http/gateway.ts';
import { projectRoot } from '../config/paths.ts';
import { describeAnnIndex, INDEX_KINDS, kindOf, rebuildAnnIndex, specForKind, type AnnSpec, type IndexKind } from '../operations/index-tune.ts';
import { formatChecks, runDoctor } from '../operations/doctor.ts';
import {
  dropEmbeddingColumn,
  embeddingModelStatus,
  formatEmbeddingStatus,
  queueReembedJobs,
  REEMBED_JOB_TYPE,
  startEmbeddingMigration,
  switchEmbeddingModel,
} from '../operations/embedding-models.ts';
import { backup, defaultBackupFile, restore } from '../operations/backup.ts';
import { bootstrapServer } from '../operations/bootstrap.ts';
import { createReportingLogin, validateReportingLogin } from '../operations/reporting-login.ts';

type Command = (config: Config, args: string[]) => Promise<number | void>;

const EMBEDDINGS_MIGRATE_HELP = `npm run embeddings:migrate -- [step]   change the embedding model without downtime

  --dimension N --name MODEL [--live-name NAME] [--jobs]
                    add embedding_next vector(N) and its index beside the live embedding
                    (the live model is recorded as NAME, default "initial")
  --jobs            queue one ${REEMBED_JOB_TYPE} job per document still missing new vectors
  --switch [--force]
                    make the new embedding live (refused while chunks miss it, unless --force)
  --drop-previous   drop the old embedding, kept as embedding_previous after the switch
  --cancel          drop embedding_next: the migration never happened
  (no step)         show the models and the progress
`;

/** Runs `fn` with the database open (attaching to a running embedded engine if there is one). */
async function withDatabase<T>(config: Config, purpose: string, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(config, { purpose });
  try {
    return await fn(db);
  } finally {
    releaseMigratePools();
    await db.close();
  }
}

const commands: Record<string, Command> = {
  async start(config) {
    const running = await startGateway(config);
    log('info', 'gateway listening', {
      graphql: `${running.url}/graphql`,
      reporting: `${running.url}/reporting/graphql`,
      ...(config.production ? {} : { graphiql: `${running.url}${GRAPHIQL_PATH}` }),
      database: running.db.mode === 'embedded' ? `embedded (${config.dataDir})` : redact(running.db.ownerUrl),
    });
    if (!config.production) {
      process.stderr.write(
        `\nSheratan Store is serving ${running.url}/graphql\n` +
          `For a token to paste into Ruru's headers ({"Authorization": "Bearer <token>"}):\n` +
          `  npm run token -- --role ${APP_ROLE} --tenant demo --sub me\n\n`,
      );
    }
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        log('info', 'shutting down', { signal });
        running.stop().then(resolve, (err: unknown) => {
          log('error', 'shutdown failed', { error: String(err) });
          process.exitCode = 1;
          resolve();
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    log('info', 'stopped');
  },

  async dev(config) {
    // The gateway with the embedded engine, plus current.sql applied on every
    // save and the GraphQL schema rebuilt after each successful run.
    const reloader = new SchemaReloader();
    const running = await startGateway(config, { reloader });
    const watcher = watchCurrent(config, running.db, { onApplied: () => reloader.reload() });
    await watcher.first;
    process.stderr.write(`Sheratan Store (dev) is serving ${running.url}/graphql; editing migrations/current.sql updates the schema\n`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        process.stderr.write(`Sheratan Store (dev): ${signal}, stopping\n`);
        watcher.stop();
        running.stop().then(resolve, (err: unknown) => {
          process.stderr.write(`Sheratan Store (dev): the shutdown failed: ${String(err)}\n`);
          process.exitCode = 1;
          resolve();
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    process.stderr.write('Sheratan Store (dev) stopped\n');
  },

  async 'db:migrate'(config) {
    await withMigrationLock(config, () => withDatabase(config, 'db:migrate', async (db) => {
      if (config.backupBeforeMigrate) {
        const pending = (await gm.status(migrateSettings(config, db))).remainingMigrations ?? [];
        if (pending.length) {
          const file = defaultBackupFile(config, 'before-migrate');
          const bytes = await backup(config, db, file);
          process.stderr.write(`BACKUP_BEFORE_MIGRATE: wrote ${file} (${bytes} bytes) before applying ${pending.length} migration(s)\n`);
        }
      }
      await migrateToHead(config, db);
    }));
  },

  async backup(config, args) {
    const { values } = parseArgs({ args, options: { out: { type: 'string', short: 'o' } } });
    const file = values.out ?? defaultBackupFile(config);
    const bytes = await withDatabase(config, 'backup', (db) => backup(config, db, file));
    process.stdout.write(`wrote ${file} (${bytes} bytes)\n`);
  },

  async restore(config, args) {
    const { positionals } = parseArgs({ args, allowPositionals: true });
    const file = positionals[0];
    if (!file) throw new ConfigError('usage: npm run restore -- FILE (a dump made by npm run backup)');
    const warning = await withDatabase(config, 'restore', (db) => restore(config, db, file));
    process.stdout.write(`restored ${file}\n`);
    if (warning) process.stderr.write(`note: ${warning}\n`);
  },

  async 'db:bootstrap'(config, args) {
    const { values } = parseArgs({ args, options: { 'no-createdb': { type: 'boolean' } } });
    const done = await withDatabase(config, 'db:bootstrap', (db) => bootstrapServer(config, db, { createdb: !values['no-createdb'] }));
    process.stdout.write(`${done.map((line) => `✓ ${line}`).join('\n')}\nnext: npm run db:migrate (as the owner; ROOT_DATABASE_URL is not needed any more)\n`);
  },

  async 'db:reporting-login'(config, args) {
    const { values } = parseArgs({ args, options: { name: { type: 'string' }, tenant: { type: 'string' }, password: { type: 'string' } } });
    const login = validateReportingLogin(values);
    await withDatabase(config, 'db:reporting-login', (db) => createReportingLogin(config, db, login));
    process.stdout.write(
      `login ${login.name} reads tenant ${login.tenant} only (as ${READONLY_ROLE}); ` +
        `connect with the owner's connection string, user ${login.name} and its password\n`,
    );
  },

  async 'db:watch'(config, args) {
    const { values } = parseArgs({ args, options: { once: { type: 'boolean' } } });
    await withDatabase(config, 'db:watch', async (db) => {
      if (db.mode === 'embedded') {
        await migrateToHead(config, db);
        const watcher = watchCurrent(config, db, { once: values.once ?? false });
        if (!(await watcher.first) && values.once) throw new Error('current.sql failed');
        if (!values.once) await new Promise<never>(() => undefined); // runs until interrupted
        return;
      }
      await ensureRoles(db, config);
      await gm.watch(migrateSettings(config, db), values.once ?? false);
      if (!values.once) await new Promise<never>(() => undefined); // runs until interrupted
    });
  },

  async 'db:commit'(config, args) {
    const { values } = parseArgs({ args, options: { message: { type: 'string', short: 'm' } } });
    await withDatabase(config, 'db:commit', (db) =>
      withMigrationLock(config, async () => {
        // commit migrates the database too: its roles must exist, as for db:migrate.
        await ensureRoles(db, config);
        await gm.commit(migrateSettings(config, db), values.message);
      }),
    );
  },

  async 'db:uncommit'(config) {
    await withDatabase(config, 'db:uncommit', (db) =>
      withMigrationLock(config, () => gm.uncommit(migrateSettings(config, db))),
    );
  },

  async 'db:reset'(config, args) {
    const { values } = parseArgs({ args, options: { erase: { type: 'boolean' }, shadow: { type: 'boolean' } } });
    if (!values.erase) {
      process.stderr.write('db:reset drops and recreates the database, deleting all data. Add --erase to confirm.\n');
      return 2;
    }
    await withDatabase(config, 'db:reset', async (db) => {
      // Refuse before anything is dropped, rather than fail half-way with no database.
      const blocker = await resetBlocker(config, db, values.shadow ?? false);
      if (blocker) {
        throw new Error(`db:reset refused, nothing was dropped: ${blocker}. Run \`npm run db:bootstrap\` with ROOT_DATABASE_URL once, or set ROOT_DATABASE_URL to a superuser for db:reset`);
      }
      await withMigrationLock(config, () => gm.reset(migrateSettings(config, db), values.shadow ?? false));
    });
  },

  async 'db:status'(config) {
    return withDatabase(config, 'db:status', async (db) => {
      const status = await migrationStatus(migrateSettings(config, db));
      process.stdout.write(status.report);
      return status.exitCode;
    });
  },

  async 'db:url'(config) {
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

  async 'db:env'(config) {
    // For graphile-migrate's own CLI (and other tools): `eval "$(npm run -s db:env)"`
    // in the shell that runs them exports the connection strings and the
    // placeholders .gmrc takes from the environment.
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
    const quote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;
    const vars: Array<[string, string]> = [
      ['DATABASE_URL', urls.ownerUrl],
      ['SHADOW_DATABASE_URL', urls.shadowUrl],
      ['ROOT_DATABASE_URL', urls.rootUrl],
      ...Object.entries(migrationPlaceholders(config)).map(([k, v]): [string, string] => [k.slice(1), v]),
    ];
    process.stdout.write(vars.map(([k, v]) => `export ${k}=${quote(v)}\n`).join(''));
  },

  async 'db:psql'(config, args) {
    return withDatabase(config, 'db:psql', async (db) => {
      const child = spawn('psql', [db.ownerUrl, ...args], { stdio: 'inherit' });
      return new Promise<number>((resolve, reject) => {
        child.once('error', (err) => reject(new Error(`could not run psql (${err.message}); install the PostgreSQL client`, { cause: err })));
        child.once('exit', (code) => resolve(code ?? 1));
      });
    });
  },

  async token(config, args) {
    const { values } = parseArgs({
      args,
      options: {
        role: { type: 'string', default: APP_ROLE },
        tenant: { type: 'string' },
        sub: { type: 'string' },
        expires: { type: 'string', default: '12h' },
      },
    });
    if (!(API_ROLES as readonly string[]).includes(values.role)) throw new ConfigError(`--role must be one of ${API_ROLES.join(', ')}`);
    if (!values.tenant) throw new ConfigError('--tenant is required (the tenant the token may see)');
    const secret = effectiveJwtSecret(config);
    if (!secret) throw new ConfigError('JWT_SECRET must be set to sign tokens when DATABASE_URL is set');
    process.stdout.write(
      `${signToken(secret, { role: values.role as ApiRole, tenant: values.tenant, sub: values.sub, expiresIn: values.expires, audience: config.jwtAudience })}\n`,
    );
  },

  async 'audit:cleanup'(config, args) {
    const { values } = parseArgs({ args, options: { days: { type: 'string', default: '90' } } });
    const days = Number(values.days);
    if (!Number.isInteger(days) || days < 0) throw new ConfigError(`--days must be a whole number of days, not "${values.days}"`);
    const deleted = await withDatabase(config, 'audit:cleanup', (db) =>
      withPgClient(db.ownerUrl, async (client) => {
        const { rows } = await client.query<{ deleted: string }>('select sheratan_private.cleanup_audit_logs($1) as deleted', [days]);
        return rows[0]!.deleted;
      }),
    );
    process.stdout.write(`deleted ${deleted} audit log row(s) older than ${days} days\n`);
  },

  async 'index:tune'(config, args) {
    const { values } = parseArgs({
      args,
      options: {
        hnsw: { type: 'boolean' },
        ivfflat: { type: 'boolean' },
        kind: { type: 'string' },
        m: { type: 'string', default: '16' },
        'ef-construction': { type: 'string', default: '64' },
        lists: { type: 'string' },
        'maintenance-work-mem': { type: 'string', default: '512MB' },
      },
    });
    const whole = (name: string, raw: string | undefined, min: number, max: number): number | undefined => {
      if (raw === undefined) return undefined;
      const n = Number(raw);
      if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`--${name} must be a whole number from ${min} to ${max}, not "${raw}"`);
      return n;
    };
    if ([values.hnsw, values.ivfflat, values.kind].filter(Boolean).length > 1) throw new ConfigError('choose one of --hnsw, --ivfflat and --kind');
    if (values.kind !== undefined && !(INDEX_KINDS as readonly string[]).includes(values.kind)) {
      throw new ConfigError(`--kind must be one of ${INDEX_KINDS.join(', ')}, not "${values.kind}"`);
    }
    await withDatabase(config, 'index:tune', (db) =>
      withPgClient(db.ownerUrl, async (client) => {
        let spec: AnnSpec | null = null;
        if (values.hnsw) spec = { method: 'hnsw', m: whole('m', values.m, 2, 100)!, efConstruction: whole('ef-construction', values['ef-construction'], 4, 1000)! };
        if (values.ivfflat) spec = { method: 'ivfflat', lists: whole('lists', values.lists, 1, 32768) };
        if (values.kind) {
          const base = specForKind(values.kind as IndexKind, whole('lists', values.lists, 1, 32768));
          spec = base.method === 'hnsw' ? { ...base, m: whole('m', values.m, 2, 100)!, efConstruction: whole('ef-construction', values['ef-construction'], 4, 1000)! } : base;
        }
        if (spec) {
          const started = Date.now();
          const using = await rebuildAnnIndex(client, spec, {
            concurrently: db.mode === 'server',
            maintenanceWorkMem: values['maintenance-work-mem'],
          });
          process.stdout.write(`rebuilt the ANN index as ${using} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        }
        const index = await describeAnnIndex(client);
        if (!index) {
          process.stdout.write('no ANN index on sheratan.document_chunks.embedding: searches scan every row (run with --hnsw)\n');
          return;
        }
        process.stdout.write(
          `${index.name}: ${kindOf(index)} (${index.method} with ${index.opclass}) ${index.options.join(', ') || '(default parameters)'}, ${index.size}, ` +
            `${index.rows} embedded chunks, ${index.scans} scans since statistics reset\n`,
        );
      }),
    );
  },

  async 'embeddings:migrate'(config, args) {
    const { values } = parseArgs({
      args,
      options: {
        dimension: { type: 'string' },
        name: { type: 'string' },
        'live-name': { type: 'string', default: 'initial' },
        jobs: { type: 'boolean' },
        switch: { type: 'boolean' },
        force: { type: 'boolean' },
        'drop-previous': { type: 'boolean' },
        cancel: { type: 'boolean' },
        status: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
    if (values.help) {
      process.stdout.write(EMBEDDINGS_MIGRATE_HELP);
      return 0;
    }
    const starting = values.dimension !== undefined || values.name !== undefined;
    const steps = [starting, values.switch, values['drop-previous'], values.cancel].filter(Boolean).length;
    if (steps > 1) throw new ConfigError('choose one step: --dimension/--name (start), --switch, --drop-previous or --cancel');
    if (starting && (values.dimension === undefined || values.name === undefined)) throw new ConfigError('starting a model switch takes both --dimension and --name');
    const dimension = values.dimension === undefined ? undefined : Number(values.dimension);
    if (dimension !== undefined && (!Number.isInteger(dimension) || dimension < 1 || dimension > 4000)) {
      throw new ConfigError(`--dimension must be a whole number from 1 to 4000, not "${values.dimension}"`);
    }
    await withDatabase(config, 'embeddings:migrate', (db) =>
      withPgClient(db.ownerUrl, async (client) => {
        if (starting) {
          await startEmbeddingMigration(client, values.name!, dimension!, values['live-name']);
          process.stdout.write(
            `added embedding_next vector(${dimension}) and its index for ${values.name}; searches keep using the live embedding\n` +
              `store the new vectors with the storeEmbeddings mutation (running gateways accept ${dimension}-dimension vectors within seconds)\n`,
          );
        } else if (values.switch) {
          const left = await switchEmbeddingModel(client, values.force ?? false);
          process.stdout.write(
            `switched: searches now use the new model's embedding${left ? ` (${left} chunks have none)` : ''}; ` +
              `send queries of its dimension, then set VECTOR_DIMENSION to it; the old column is kept as embedding_previous until --drop-previous\n`,
          );
        } else if (values['drop-previous']) {
          await dropEmbeddingColumn(client, 'previous');
          process.stdout.write('dropped embedding_previous and its index\n');
        } else if (values.cancel) {
          await dropEmbeddingColumn(client, 'next');
          process.stdout.write('cancelled: dropped embedding_next and its index; searches were not affected\n');
        }
        const status = await embeddingModelStatus(client);
        if (values.jobs) {
          const next = status.models.find((m) => m.state === 'next');
          if (!next) throw new ConfigError('--jobs needs a model switch in progress (start one with --dimension and --name)');
          const queued = await queueReembedJobs(client, next.name, next.dimension);
          process.stdout.write(`queued ${queued} ${REEMBED_JOB_TYPE} job(s), one per document still missing ${next.name} vectors\n`);
        }
        process.stdout.write(formatEmbeddingStatus(status, (await embeddingColumns(client)).live!));
      }),
    );
  },

  async doctor(config, args) {
    const { values } = parseArgs({ args, options: { json: { type: 'boolean' } } });
    const checks = await withDatabase(config, 'doctor', (db) => runDoctor(config, db));
    const ok = checks.every((c) => c.status !== 'fail');
    process.stdout.write(values.json ? `${JSON.stringify({ ok, checks }, null, 2)}\n` : `${formatChecks(checks)}\n`);
    return ok ? 0 : 1;
  },

  async 'schema:export'(config) {
    await withDatabase(config, 'schema:export', async (db) => {
      if (db.mode === 'embedded') await migrateToHead(config, db);
      const { api, reporting } = await exportSchemas(config, db);
      await writeFile(path.join(projectRoot, 'schema.graphql'), api);
      await writeFile(path.join(projectRoot, 'reporting.graphql'), reporting);
      process.stdout.write('wrote schema.graphql and reporting.graphql\n');
    });
  },
};

async function main(): Promise<number> {
  const [name, ...args] = process.argv.slice(2);
  const command = name ? commands[name] : undefined;
  if (!command) {
    process.stderr.write(`usage: sheratan <command>\ncommands: ${Object.keys(commands).join(', ')}\n`);
    return name ? 2 : 0;
  }
  const config = loadConfig();
  setLogLevel(config.logLevel);
  return (await command(config, args)) ?? 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // One line for people; the stack with LOG_LEVEL=debug.
    const debug = process.env.LOG_LEVEL === 'debug';
    process.stderr.write(`sheratan: ${err instanceof Error ? (debug ? (err.stack ?? err.message) : err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);

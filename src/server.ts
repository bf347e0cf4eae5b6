// `npm start`: open the database (serving the embedded engine when there is
// no DATABASE_URL), apply migrations on the embedded database, build the
// schema, serve HTTP; on SIGTERM/SIGINT shut all of it down in order.
import type { Config } from './config.ts';
import { openDatabase, type Database } from './database.ts';
import { dataDirSecret } from './embedded/index.ts';
import { createGateway, type Gateway } from './gateway.ts';
import { migrateToHead, releaseMigratePools, structuredMigrateLogger } from './migrations.ts';
import { setLogLevel } from './log.ts';
import type { SchemaReloader } from './schema-reload.ts';
import { assertDimension, inspectVector, searchSettings } from './vector.ts';

export interface RunningGateway {
  url: string;
  db: Database;
  gateway: Gateway;
  config: Config;
  stop(): Promise<void>;
}

/** The JWT secret: configured, or generated once per embedded data directory. */
export function effectiveJwtSecret(config: Config): string | undefined {
  if (config.jwtSecret) return config.jwtSecret;
  return config.databaseUrl ? undefined : dataDirSecret(config.dataDir, 'jwt-secret');
}

export interface GatewayOptions {
  port?: number;
  host?: string;
  /** Watch mode: rebuild the schema whenever this reloader fires. */
  reloader?: SchemaReloader;
}

export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<RunningGateway> {
  setLogLevel(config.logLevel);
  const db = await openDatabase(config, { purpose: 'gateway', serve: true });
  try {
    if (db.mode === 'embedded') {
      await migrateToHead(config, db, structuredMigrateLogger);
      releaseMigratePools();
    }
    const vector = await inspectVector(db.authUrl);
    assertDimension(config, vector);
    const effective: Config = { ...config, jwtSecret: effectiveJwtSecret(config) };
    const gateway = await createGateway(
      effective,
      db,
      { ...searchSettings(config, vector), 'sheratan.job_lock_timeout': String(config.jobLockTimeoutS) },
      options.reloader,
    );
    const url = await gateway.listen(options.port ?? config.port, options.host ?? config.host);
    let stopping: Promise<void> | null = null;
    return {
      url,
      db,
      gateway,
      config: effective,
      stop: () =>
        (stopping ??= (async () => {
          await gateway.close();
          await db.close();
        })()),
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}

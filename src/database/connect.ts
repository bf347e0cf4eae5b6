// Where the database is: the embedded engine (no DATABASE_URL) or a server.
// Both modes end in the same set of ordinary connection strings.
import pg from 'pg';
import type { Config } from '../config/config.ts';
import { attachOrStartEmbedded, startEmbedded, type EmbeddedEngine } from '../embedded/index.ts';

import { AUTHENTICATOR_ROLE, DATABASE_ROLES } from '../config/roles.ts';

export { AUTHENTICATOR_ROLE, DATABASE_ROLES };

export interface Database {
  /** Which backend: the embedded engine (PGlite), or a PostgreSQL server (DATABASE_URL). */
  backend: 'embedded' | 'server';
  /** Owner connection: migrations and admin commands. */
  ownerUrl: string;
  /** The gateway's connection (the authenticator role). */
  authUrl: string;
  /** Where the reporting endpoint reads. */
  readUrl: string;
  shadowUrl: string;
  rootUrl: string;
  engine?: EmbeddedEngine;
  close(): Promise<void>;
}

function withUser(url: string, user: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  return u.toString();
}

/** The same connection string, on database `db`. */
export function onDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(db)}`;
  return u.toString();
}

/** The database a connection string names. */
export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

/** The user a connection string names. */
export function userName(url: string): string {
  return decodeURIComponent(new URL(url).username);
}

export function serverUrls(config: Config & { databaseUrl: string }): Omit<Database, 'backend' | 'close' | 'engine'> {
  const owner = config.databaseUrl;
  const dbName = databaseName(owner);
  const authUrl = config.authDatabaseUrl ?? withUser(owner, AUTHENTICATOR_ROLE);
  return {
    ownerUrl: owner,
    authUrl,
    readUrl: config.readDatabaseUrl ?? authUrl,
    shadowUrl: config.shadowDatabaseUrl ?? onDatabase(owner, `${dbName}_shadow`),
    rootUrl: config.rootDatabaseUrl ?? onDatabase(owner, 'postgres'),
  };
}

export interface OpenOptions {
  /** What this process is (shown to others that find the embedded data directory in use). */
  purpose: string;
  /** Serve the embedded engine from this process, failing if another process already does. */
  serve?: boolean;
}

export async function openDatabase(config: Config, options: OpenOptions): Promise<Database> {
  if (config.databaseUrl) {
    return { backend: 'server', ...serverUrls({ ...config, databaseUrl: config.databaseUrl }), close: async () => undefined };
  }
  const engineOptions = {
    idleInTransactionTimeoutMs: config.idleInTransactionTimeoutMs,
    ...(config.embeddedPort ? { port: config.embeddedPort } : {}),
  };
  const engine = options.serve
    ? await startEmbedded(config.dataDir, { purpose: options.purpose, ...engineOptions })
    : await attachOrStartEmbedded(config.dataDir, options.purpose, engineOptions);
  const authUrl = engine.url(AUTHENTICATOR_ROLE);
  return {
    backend: 'embedded',
    ownerUrl: engine.url(),
    authUrl,
    readUrl: config.readDatabaseUrl ?? authUrl,
    shadowUrl: engine.url(undefined, true),
    rootUrl: engine.url('postgres'),
    engine,
    close: () => engine.stop(),
  };
}

/**
 * The most privileged connection string to the owner's database: the embedded
 * superuser, ROOT_DATABASE_URL on that database when it is set, else the owner.
 */
export function privilegedUrl(config: Config, db: Database): string {
  if (db.backend === 'embedded') return db.rootUrl;
  return config.rootDatabaseUrl ? onDatabase(config.rootDatabaseUrl, databaseName(db.ownerUrl)) : db.ownerUrl;
}

/** Runs `fn` on a fresh connection to `url`, closing it afterwards. */
export async function withPgClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(url);
  // A dropped connection surfaces as the failed query; without a listener it would crash the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

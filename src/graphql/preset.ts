// The PostGraphile presets for the two endpoints: the full API and the
// read-only reporting schema. Both expose only the `sheratan` schema.
import type pg from 'pg';
import type { WithPgClient } from 'postgraphile/@dataplan/pg';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { makePgService } from 'postgraphile/adaptors/pg';
import { PgAggregatesPreset } from '@graphile/pg-aggregates';
import type { Config } from '../config/config.ts';
import { log } from '../config/log.ts';
import { APP_ROLE, READONLY_ROLE } from '../config/roles.ts';
import type { SchemaReloader } from './schema-reload.ts';
import { makeRequestLimitsPlugin } from '../../plugins/request-limits.ts';
import { makeMaskError } from '../../plugins/error-mask.ts';
import { makeVectorCodecPlugin } from '../../plugins/vector-codec.ts';
import { SimilaritySearchPlugin } from '../../plugins/similarity-search.ts';
import { HybridSearchPlugin } from '../../plugins/hybrid-search.ts';
import { MoreLikeThisPlugin } from '../../plugins/more-like-this.ts';
import { SEARCH_FIELDS } from '../../plugins/match-select.ts';
import { makeRequestFactsPlugin, type GraphQLFacts } from '../../plugins/request-facts.ts';
import { ChunkOrderPlugin } from '../../plugins/chunk-order.ts';
import { DatabaseBusyPlugin } from '../../plugins/database-busy.ts';

export const EXPOSED_SCHEMA = 'sheratan';

export interface PresetOptions {
  config: Config;
  pool: pg.Pool;
  /** The reporting schema: queries and aggregates only, no mutation type at all. */
  readOnly: boolean;
  graphqlPath: string;
  graphiqlPath?: string;
  /** Watch mode: rebuild the schema when this fires. */
  reloader?: SchemaReloader;
  /** Runs the API's queries instead of `pool` (the embedded engine's in-process channel). */
  withPgClient?: WithPgClient;
  /** Computes the request's transaction settings (role, claims, timeout). */
  pgSettings: (req: unknown) => Record<string, string>;
  /** Finds, from grafserv's request context, the HTTP layer's facts to fill in for logs and metrics. */
  factsOf?: (requestContext: unknown) => GraphQLFacts | undefined;
  /** The embedding dimensions the Vector scalar accepts now (the live one, and during a model switch the new one). */
  acceptedDimensions?: () => readonly number[];
}

export function makePreset(options: PresetOptions): GraphileConfig.Preset {
  const { config } = options;
  const service = makePgService({
    pool: options.pool,
    schemas: [EXPOSED_SCHEMA],
    // The authenticator is NOINHERIT and holds no privileges itself: build
    // each schema from what its role may actually do.
    pgSettingsForIntrospection: { role: options.readOnly ? READONLY_ROLE : APP_ROLE },
    ...(options.reloader ? { pgSubscriber: options.reloader } : {}),
  });
  const direct = options.withPgClient;
  if (direct) {
    const base = service.adaptor;
    service.adaptor = {
      ...base,
      // Its clients have no node-postgres `rawClient`; nothing in this gateway uses one.
      createWithPgClient: (settings, variant) =>
        variant === 'SUPERUSER' ? base.createWithPgClient(settings, variant) : (direct as Awaited<ReturnType<typeof base.createWithPgClient>>),
    };
  }
  return {
    extends: [PostGraphileAmberPreset, PgAggregatesPreset],
    plugins: [
      makeVectorCodecPlugin(config.vectorDimension, options.acceptedDimensions),
      SimilaritySearchPlugin,
      HybridSearchPlugin,
      MoreLikeThisPlugin,
      makeRequestFactsPlugin(options.factsOf ?? (() => undefined)),
      ChunkOrderPlugin,
      DatabaseBusyPlugin,
      makeRequestLimitsPlugin({
        maxQueryDepth: config.maxQueryDepth,
        maxFields: config.maxQueryFields,
        maxAliases: config.maxQueryAliases,
        maxCost: config.maxQueryCost,
        maxPageSize: config.maxPageSize,
        maxOffset: config.maxOffset,
        fieldCaps: Object.fromEntries(
          SEARCH_FIELDS.map((field) => [field, { cap: config.maxSearchResults, setting: 'MAX_SEARCH_RESULTS' }]),
        ),
        searchFields: SEARCH_FIELDS,
        maxSearches: config.maxSearchesPerRequest,
        maxQueryText: config.maxQueryTextLength,
        introspection: config.introspection,
      }),
    ],
    pgServices: [service],
    schema: {
      // Reporting tools get no insert/update/delete and no mutation functions.
      ...(options.readOnly ? { defaultBehavior: '-insert -update -delete -queryField:mutation -mutationField' } : {}),
      pgForbidSetofFunctionsToReturnNull: true,
    },
    grafserv: {
      graphqlPath: options.graphqlPath,
      graphiql: Boolean(options.graphiqlPath) && !config.production,
      graphiqlPath: options.graphiqlPath ?? '/graphiql-disabled',
      graphiqlOnGraphQLGET: false,
      // Queries (never mutations: grafserv refuses them over GET) as GET, as urql and Apollo send short ones.
      graphqlOverGET: true,
      websockets: false,
      watch: Boolean(options.reloader),
      maxRequestLength: config.maxBodyBytes,
      maskError: makeMaskError(log),
    },
    // The reloader replaces LISTEN/NOTIFY, so no event-trigger fixtures are needed.
    gather: { installWatchFixtures: false },
    grafast: {
      explain: false,
      context(requestContext) {
        const req = (requestContext as { expressv4?: { req: unknown } }).expressv4?.req;
        return { pgSettings: options.pgSettings(req) };
      },
    },
  };
}

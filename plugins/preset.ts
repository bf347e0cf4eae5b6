// The GraphQL layer as data: SheratanPreset is PostGraphile's Amber preset
// with aggregates, pgvector and our search fields, limits, error masking and
// HTTP behaviour; ReportingPreset extends it into the read-only schema. Both
// are constants, composed with `extends` like @graphile/pg-aggregates'
// preset. What varies per deployment is a schema option (each plugin
// declares its own: sheratanVectorDimension, sheratanAcceptedDimensions,
// sheratanRequestLimits) or the user's preset: pgServices, paths, the
// context (src/graphql/endpoint-preset.ts composes the gateway's).
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { PgAggregatesPreset } from '@graphile/pg-aggregates';
import { VectorCodecPlugin } from './vector-codec.ts';
import { SimilaritySearchPlugin } from './similarity-search.ts';
import { HybridSearchPlugin } from './hybrid-search.ts';
import { MoreLikeThisPlugin } from './more-like-this.ts';
import { RequestFactsPlugin } from './request-facts.ts';
import { ChunkOrderPlugin } from './chunk-order.ts';
import { DatabaseBusyPlugin } from './database-busy.ts';
import { RequestLimitsPlugin } from './request-limits.ts';
import { AuthenticationRequiredPlugin } from './authentication-required.ts';
import { GroupedAggregatesCapPlugin } from './grouped-aggregates-cap.ts';
import { TextSearchPlugin } from './text-search.ts';
import { TextIngestPlugin } from './text-ingest.ts';
import { LivePlugin } from './live.ts';
import { maskError } from './error-mask.ts';
import { API_SCHEMA, REPORTING_SCHEMA, ReportingSchemaPlugin } from './reporting-schema.ts';

declare global {
  namespace GraphileBuild {
    interface SchemaOptions {
      /**
       * The PostgreSQL schemas the preset's endpoint exposes: its pg service
       * must introspect these (`exposedSchemas` reads them; default `sheratan`).
       */
      sheratanExposedSchemas?: readonly string[];
    }
  }
}

export { API_SCHEMA, REPORTING_SCHEMA };

export const SheratanPreset: GraphileConfig.Preset = {
  extends: [PostGraphileAmberPreset, PgAggregatesPreset],
  plugins: [
    VectorCodecPlugin,
    SimilaritySearchPlugin,
    HybridSearchPlugin,
    MoreLikeThisPlugin,
    RequestFactsPlugin,
    ChunkOrderPlugin,
    DatabaseBusyPlugin,
    RequestLimitsPlugin,
    TextSearchPlugin,
    TextIngestPlugin,
    AuthenticationRequiredPlugin,
    GroupedAggregatesCapPlugin,
    LivePlugin,
  ],
  schema: {
    pgForbidSetofFunctionsToReturnNull: true,
  },
  grafserv: {
    graphiqlOnGraphQLGET: false,
    // Queries (never mutations: grafserv refuses them over GET) as GET, as urql and Apollo send short ones.
    graphqlOverGET: true,
    // Subscriptions over graphql-ws: the HTTP layer installs the socket server (src/http/live.ts, its limits).
    websockets: true,
    maskError,
  },
  // Schema reloads come from our own reloader (pgSubscriber), not event triggers.
  gather: { installWatchFixtures: false },
  grafast: { explain: false },
};

/**
 * Reporting tools: queries and aggregates only, no insert/update/delete, no
 * mutation type at all, no GraphiQL; the reporting views beside the tables.
 */
export const ReportingPreset: GraphileConfig.Preset = {
  extends: [SheratanPreset],
  plugins: [ReportingSchemaPlugin],
  // Reporting reads; it follows nothing live.
  disablePlugins: ['SheratanLivePlugin'],
  schema: {
    defaultBehavior: '-insert -update -delete -queryField:mutation -mutationField',
    sheratanExposedSchemas: [API_SCHEMA, REPORTING_SCHEMA],
  },
  grafserv: { graphiql: false, websockets: false },
};

/** The schemas a preset (ours, or one extending it) exposes: the nearest `sheratanExposedSchemas` up its `extends`, else the API's. */
export function exposedSchemas(preset: GraphileConfig.Preset): readonly string[] {
  const own = preset.schema?.sheratanExposedSchemas;
  if (own) return own;
  for (const parent of preset.extends ?? []) {
    const found = exposedSchemas(parent);
    if (found !== DEFAULT_SCHEMAS) return found;
  }
  return DEFAULT_SCHEMAS;
}
const DEFAULT_SCHEMAS: readonly string[] = [API_SCHEMA];

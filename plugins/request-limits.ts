// Request limits for grafserv and grafast: query depth (introspection with its
// own, larger allowance, so that IDEs and codegen can load the schema),
// introspection policy, and the operation limits of operation-cost.ts: the
// cheap count before validation, the cost and caps before execution. Limits
// reject, they never silently clip.
import { depthLimit } from '@graphile/depth-limit';
import { SafeError } from 'grafast';
import { GraphQLError, Lexer, NoSchemaIntrospectionCustomRule, parse, Source, TokenKind, type DocumentNode, type ValidationContext, type ValidationRule } from 'graphql';
import { SEARCH_FIELDS } from './match-select.ts';
import { countSelections, operationCost, type CostLimits, type Refusal } from './operation-cost.ts';

/** The limits every request is held to; the environment variable of each is in its comment. */
export interface RequestLimits {
  /** MAX_QUERY_DEPTH */
  maxQueryDepth: number;
  /** MAX_QUERY_FIELDS */
  maxFields: number;
  /** MAX_QUERY_ALIASES */
  maxAliases: number;
  /** MAX_QUERY_COST */
  maxCost: number;
  /** MAX_PAGE_SIZE */
  maxPageSize: number;
  /** MAX_OFFSET */
  maxOffset: number;
  /** MAX_SEARCH_RESULTS: the largest `first` of a search field. */
  maxSearchResults: number;
  /** MAX_SEARCHES_PER_REQUEST */
  maxSearches: number;
  /** MAX_QUERY_TEXT_LENGTH */
  maxQueryText: number;
  /** MAX_DOCUMENT_BYTES: the GraphQL document's size in UTF-8 bytes, checked before anything reads it. */
  maxDocumentBytes: number;
  /** MAX_QUERY_TOKENS: lexical tokens of the document, counted by graphql's own lexer before parsing. */
  maxTokens: number;
  /** MAX_QUERY_DIRECTIVES: directives in one document (each one validation must check and may report). */
  maxDirectives: number;
  /** GRAPHQL_INTROSPECTION */
  introspection: boolean;
}

/** What the limits are when nothing sets them: the environment variables' defaults (src/config/config.ts reads these). */
export const DEFAULT_REQUEST_LIMITS: Readonly<RequestLimits> = {
  maxQueryDepth: 12,
  maxFields: 1000,
  maxAliases: 50,
  maxCost: 50_000,
  maxPageSize: 1000,
  maxOffset: 10_000,
  maxSearchResults: 100,
  maxSearches: 20,
  maxQueryText: 2000,
  // grafserv's own default for a whole request (maxRequestLength) is 100,000 bytes.
  maxDocumentBytes: 100_000,
  // A 4,000-number vector literal is about 4,000 tokens; graphql's introspection query about 300.
  maxTokens: 15_000,
  maxDirectives: 100,
  introspection: true,
};

declare global {
  namespace GraphileBuild {
    interface SchemaOptions {
      /** The request limits (DEFAULT_REQUEST_LIMITS when unset). */
      sheratanRequestLimits?: RequestLimits;
    }
  }
}

export type Limits = RequestLimits & CostLimits;

// The limits a preset sets (or the defaults), with the per-field caps of the
// search fields; computed once per limits object.
const withCaps = new WeakMap<RequestLimits, Limits>();
function limitsOf(preset: GraphileConfig.ResolvedPreset | undefined): Limits {
  const given = preset?.schema?.sheratanRequestLimits ?? DEFAULT_REQUEST_LIMITS;
  let limits = withCaps.get(given);
  if (!limits) {
    limits = {
      ...given,
      fieldCaps: Object.fromEntries(SEARCH_FIELDS.map((field) => [field, { cap: given.maxSearchResults, setting: 'MAX_SEARCH_RESULTS' }])),
      searchFields: SEARCH_FIELDS,
    };
    withCaps.set(given, limits);
  }
  return limits;
}

// graphql's standard introspection query nests `ofType` 9 levels deep (14 with
// __schema, types, fields, type): introspection gets this allowance whatever
// MAX_QUERY_DEPTH is; it reads only the schema.
const INTROSPECTION_DEPTH = 20;

/** "Did you mean …?" names fields and types: with introspection off it must not (the schema is not public). */
const withoutSuggestions = (rule: ValidationRule): ValidationRule => (context: ValidationContext) =>
  rule(
    new Proxy(context, {
      get(target, key, receiver) {
        if (key === 'reportError') {
          return (error: GraphQLError) =>
            target.reportError(new GraphQLError(error.message.replace(/ Did you mean .*\?$/, ''), { nodes: error.nodes, extensions: error.extensions }));
        }
        const value: unknown = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }),
  );

/**
 * An operation of a type the schema lacks (a mutation sent to the read-only
 * endpoint) is a validation error, before planning, which would otherwise
 * fail and write a stack trace to stderr.
 */
const KnownOperationTypesRule: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (!context.getSchema().getRootType(node.operation)) {
      const hint = node.operation === 'mutation' ? ' (the reporting endpoint is read-only: send mutations to /graphql)' : '';
      context.reportError(new GraphQLError(`this endpoint has no ${node.operation}s${hint}`, { nodes: node }));
    }
  },
});

/**
 * What a document may be before anything parses it, cheapest check first, so
 * that the work done on a hostile document is bounded by the limits and not by
 * its size: its bytes (a length check), its tokens (graphql's own lexer,
 * stopping at the limit), then, parsed without locations, its fields, aliases
 * and directives. grafserv parses it again (and caches it) only once it passed.
 * A syntax error is left to grafserv to report as usual.
 */
export function documentRefusal(query: string, limits: Limits): Refusal | null {
  // UTF-8 takes 1 to 3 bytes per UTF-16 unit: count bytes only when the length alone cannot decide.
  if (query.length > limits.maxDocumentBytes || (query.length * 3 > limits.maxDocumentBytes && Buffer.byteLength(query) > limits.maxDocumentBytes)) {
    return { code: 'DOCUMENT_TOO_LARGE', message: `the GraphQL document is larger than ${limits.maxDocumentBytes} bytes (MAX_DOCUMENT_BYTES)` };
  }
  const lexer = new Lexer(new Source(query));
  try {
    for (let tokens = 0; lexer.advance().kind !== TokenKind.EOF; ) {
      if (++tokens > limits.maxTokens) {
        return { code: 'TOO_MANY_TOKENS', message: `the GraphQL document has more than ${limits.maxTokens} tokens (MAX_QUERY_TOKENS)` };
      }
    }
  } catch {
    return null; // a syntax error: grafserv's parse reports it
  }
  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: limits.maxTokens, noLocation: true });
  } catch {
    return null;
  }
  return countSelections(document, limits);
}

export const RequestLimitsPlugin: GraphileConfig.Plugin = {
  name: 'SheratanRequestLimitsPlugin',
  version: '1.0.0',
  description: 'Query depth, introspection policy, operation cost and page-size caps',
  grafserv: {
    middleware: {
      setPreset(next, event) {
        const limits = limitsOf(event.resolvedPreset);
        if (!limits.introspection) event.validationRules.splice(0, event.validationRules.length, ...event.validationRules.map(withoutSuggestions));
        event.validationRules.push(
          KnownOperationTypesRule,
          depthLimit({
            maxDepth: limits.maxQueryDepth,
            maxListDepth: limits.maxQueryDepth,
            maxSelfReferentialDepth: limits.maxQueryDepth,
            maxIntrospectionDepth: INTROSPECTION_DEPTH,
            maxIntrospectionListDepth: INTROSPECTION_DEPTH,
            maxIntrospectionSelfReferentialDepth: INTROSPECTION_DEPTH,
            // depth-limit allows 8; graphql's getIntrospectionQuery() asks for 9.
            maxDepthByFieldCoordinates: { '__Type.ofType': 10 },
          }),
        );
        if (!limits.introspection) event.validationRules.push(NoSchemaIntrospectionCustomRule);
        return next();
      },
      processGraphQLRequestBody(next, event) {
        const { query } = event.body;
        if (typeof query === 'string') {
          const refusal = documentRefusal(query, limitsOf(event.resolvedPreset));
          if (refusal) throw new SafeError(refusal.message, { statusCode: 400, code: refusal.code });
        }
        return next();
      },
    },
  },
  grafast: {
    middleware: {
      execute(next, event) {
        const { schema, document, operationName, variableValues, resolvedPreset } = event.args;
        const limits = limitsOf(resolvedPreset);
        const result = operationCost(schema, document, operationName, variableValues as Record<string, unknown> | null, limits);
        if ('refusal' in result) {
          return { errors: [new GraphQLError(result.refusal.message, { extensions: { code: result.refusal.code } })] };
        }
        return next();
      },
    },
  },
};

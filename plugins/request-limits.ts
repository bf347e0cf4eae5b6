// Request limits for grafserv and grafast: query depth (introspection with its
// own, larger allowance, so that IDEs and codegen can load the schema),
// introspection policy, and the operation limits of operation-cost.ts: the
// cheap count before validation, the cost and caps before execution. Limits
// reject, they never silently clip.
import { depthLimit } from '@graphile/depth-limit';
import { SafeError } from 'grafast';
import {
  GraphQLError,
  Lexer,
  NoSchemaIntrospectionCustomRule,
  parse,
  Source,
  TokenKind,
  type DocumentNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { countSelections, operationCost, type CostLimits, type Refusal } from './operation-cost.ts';

// The limits and their defaults are configuration's, stated there once.
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from '../src/config/request-limits.ts';

declare global {
  namespace GraphileBuild {
    interface ScopeObjectFieldsField {
      /** The field runs a search (declared with `@scope(isSheratanSearch: true)` in its plugin's typeDefs). */
      isSheratanSearch?: boolean;
    }
    interface SchemaOptions {
      /** The request limits (DEFAULT_REQUEST_LIMITS when unset). */
      sheratanRequestLimits?: RequestLimits;
    }
  }
}

export type Limits = RequestLimits & CostLimits;

// The limits a preset sets (or the defaults). Which fields are searches, and so capped by maxSearchResults, the
// schema says (isSearchField: fields declared `@scope(isSheratanSearch: true)`, marked by the hook below).
function limitsOf(preset: GraphileConfig.ResolvedPreset | undefined): Limits {
  return preset?.schema?.sheratanRequestLimits ?? DEFAULT_REQUEST_LIMITS;
}

// graphql's standard introspection query nests `ofType` 9 levels deep (14 with
// __schema, types, fields, type): introspection gets this allowance whatever
// MAX_QUERY_DEPTH is; it reads only the schema.
const INTROSPECTION_DEPTH = 20;

/**
 * How deeply brackets may nest in a document (`{`, `[`, `(`) and JSON values
 * in its variables or extensions. Parsing a document, coercing a value and
 * serializing it for the SQL (JSON.stringify) all recurse: 6,000 nested `[`
 * in an anonymous document overflowed graphql's parser's stack, 3,000 nested
 * objects in an argument or 5,000 in a variable overflowed the serializer
 * during execution (an INTERNAL_SERVER_ERROR instead of a clear refusal).
 * Fixed, not a setting: introspection nests about 30 deep, MAX_QUERY_DEPTH at
 * its largest useful values far less, and metadata that needs more is not
 * metadata.
 */
export const MAX_INPUT_NESTING = 100;

const tooDeep = (where: string): Refusal => ({
  code: 'TOO_DEEPLY_NESTED',
  message: `${where} nests deeper than ${MAX_INPUT_NESTING} levels of brackets or JSON values (the limit of the gateway)`,
});

/** Whether a value of a map (the variables, the extensions: the map itself is no level) nests deeper than MAX_INPUT_NESTING. */
const valuesNestDeeper = (map: unknown): boolean =>
  map !== null && typeof map === 'object' && Object.values(map).some((value) => nestsDeeperThan(value, MAX_INPUT_NESTING));

/** Whether a JSON value nests deeper than `max` (iterative: the value may be deeper than the stack). */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length) {
    const { value: v, depth } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const item of Array.isArray(v) ? v : Object.values(v)) if (item !== null && typeof item === 'object') stack.push({ value: item, depth: depth + 1 });
  }
  return false;
}

/** "Did you mean …?" names fields and types: with introspection off it must not (the schema is not public). */
const withoutSuggestions =
  (rule: ValidationRule): ValidationRule =>
  (context: ValidationContext) =>
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
    for (let tokens = 0, nesting = 0, kind = lexer.advance().kind; kind !== TokenKind.EOF; kind = lexer.advance().kind) {
      if (++tokens > limits.maxTokens) {
        return { code: 'TOO_MANY_TOKENS', message: `the GraphQL document has more than ${limits.maxTokens} tokens (MAX_QUERY_TOKENS)` };
      }
      // The parser recurses once per bracket: its depth is bounded here, before it runs.
      if (kind === TokenKind.BRACE_L || kind === TokenKind.BRACKET_L || kind === TokenKind.PAREN_L) {
        if (++nesting > MAX_INPUT_NESTING) return tooDeep('the GraphQL document');
      } else if (kind === TokenKind.BRACE_R || kind === TokenKind.BRACKET_R || kind === TokenKind.PAREN_R) nesting--;
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
  schema: {
    hooks: {
      // The cost walk knows a connection by the scope graphile-build registered it with, not by its name
      // (a user's inflection may call it anything): it is marked in the type's extensions (operation-cost.ts).
      GraphQLObjectType(config, _build, context) {
        if (!context.scope.isConnectionType) return config;
        return { ...config, extensions: { ...config.extensions, sheratan: { ...config.extensions?.sheratan, connection: true } } };
      },
      // A search field says so in its definition (`@scope(isSheratanSearch: true)`): marked in its extensions for the
      // cost walk (its cap, the searches it counts) and the request facts, instead of a list of names.
      GraphQLObjectType_fields_field(field, _build, context) {
        if (!context.scope.isSheratanSearch) return field;
        return { ...field, extensions: { ...field.extensions, sheratan: { ...field.extensions?.sheratan, search: true } } };
      },
    },
  },
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
        const { query, variableValues, extensions } = event.body;
        const refusal =
          (typeof query === 'string' ? documentRefusal(query, limitsOf(event.resolvedPreset)) : null) ??
          (valuesNestDeeper(variableValues) ? tooDeep('a variable') : null) ??
          (valuesNestDeeper(extensions) ? tooDeep('an extension') : null);
        if (refusal) throw new SafeError(refusal.message, { statusCode: 400, code: refusal.code });
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

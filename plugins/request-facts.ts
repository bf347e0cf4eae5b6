// Records each GraphQL request's operation name (and whether it searches)
// for the request log line and the metrics labels. Where the facts live is
// the HTTP layer's business: it passes `factsOf`, which finds them for a
// request (or not); this plugin imports nothing from src/.
import { SEARCH_FIELDS } from './match-select.ts';

/** What the GraphQL layer tells the HTTP layer about a request. */
export interface GraphQLFacts {
  operation?: string;
  search?: boolean;
}

const SEARCHES = new RegExp(SEARCH_FIELDS.join('|'));

/** The operation name of a GraphQL request: its name, or else its first root field. */
export function operationName(query: unknown, given: unknown): string | undefined {
  if (typeof given === 'string' && given) return given;
  if (typeof query !== 'string') return undefined;
  const named = /^\s*(?:query|mutation|subscription)\s+([_A-Za-z]\w*)/.exec(query);
  if (named) return named[1];
  return /{\s*([_A-Za-z]\w*)/.exec(query)?.[1];
}

/** `factsOf` receives grafserv's request context and returns the request's facts to fill in. */
export function makeRequestFactsPlugin(factsOf: (requestContext: unknown) => GraphQLFacts | undefined): GraphileConfig.Plugin {
  return {
    name: 'SheratanRequestFactsPlugin',
    version: '1.0.0',
    description: 'Operation names for logs and metrics',
    grafserv: {
      middleware: {
        processGraphQLRequestBody(next, event) {
          const facts = factsOf(event.request?.requestContext);
          if (facts) {
            const { query, operationName: given } = event.body;
            facts.operation = operationName(query, given);
            facts.search = typeof query === 'string' && SEARCHES.test(query);
          }
          return next();
        },
      },
    },
  };
}

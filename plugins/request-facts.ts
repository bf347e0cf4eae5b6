// Records each GraphQL request's operation name (and whether it searches) on
// the HTTP request, for the request log line and the metrics labels.
import { operationName, type FactsRequest } from '../src/observability.ts';
import { SEARCH_FIELDS } from './match-select.ts';

const SEARCHES = new RegExp(SEARCH_FIELDS.join('|'));

export const RequestFactsPlugin: GraphileConfig.Plugin = {
  name: 'SheratanRequestFactsPlugin',
  version: '1.0.0',
  description: 'Operation names for logs and metrics',
  grafserv: {
    middleware: {
      processGraphQLRequestBody(next, event) {
        const req = (event.request?.requestContext as { expressv4?: { req: FactsRequest } } | undefined)?.expressv4?.req;
        const facts = req?.sheratanFacts;
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

// A request without a token runs as the anonymous role, which may read and
// write nothing: left to the database, its first field would fail with
// "permission denied for table documents", which tells a client nothing about
// what to do. This plugin says it before anything runs: an operation from the
// anonymous role that selects anything but introspection (__schema, __type,
// __typename) is answered "authentication required" (code UNAUTHENTICATED,
// HTTP 401 with WWW-Authenticate: Bearer). Introspection stays open, so
// Ruru/GraphiQL loads the schema without a token in development.
//
// The role comes from the context: whoever builds it (src/http/graphql-context.ts's
// graphqlContext) names the anonymous role in `sheratanAnonymousRole`, and the
// request is anonymous when `pgSettings.role`, the role its SQL would run as,
// is that role. A context without it (no HTTP layer) is left to the database.
import { SafeError } from 'grafast';
import { getOperationAST, GraphQLError, Kind, parse, type DocumentNode, type FragmentDefinitionNode, type SelectionSetNode } from 'graphql';

const REFUSAL = 'authentication required: send "Authorization: Bearer <token>" (only introspection is open without a token)';

/** The error code of an operation refused for want of a token. */
export const UNAUTHENTICATED = 'UNAUTHENTICATED';

declare global {
  namespace Grafast {
    interface Context {
      /** The role requests without a token run as (set by the context's builder; see SheratanAuthenticationRequiredPlugin). */
      sheratanAnonymousRole?: string;
    }
  }
}

const INTROSPECTION: ReadonlySet<string> = new Set(['__schema', '__type', '__typename']);

/** Whether a root selection set reaches a field other than introspection, through fragments too (validation has ruled out cycles; `seen` guards anyway). */
function reachesData(selections: SelectionSetNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>, seen: Set<string>): boolean {
  for (const selection of selections.selections) {
    if (selection.kind === Kind.FIELD) {
      if (!INTROSPECTION.has(selection.name.value)) return true;
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      if (reachesData(selection.selectionSet, fragments, seen)) return true;
    } else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      if (seen.has(name)) continue;
      seen.add(name);
      // An unknown fragment cannot pass validation; counted as data all the same.
      if (!fragment || reachesData(fragment.selectionSet, fragments, seen)) return true;
    }
  }
  return false;
}

// grafserv hands the same DocumentNode to every request with the same text
// (its parse cache): each (document, operation name) is walked once.
const walked = new WeakMap<DocumentNode, Map<string, boolean>>();

/** Whether the operation a request runs selects anything but introspection (skip/include count as selected). */
export function selectsData(document: DocumentNode, operationName: string | null | undefined): boolean {
  let byName = walked.get(document);
  if (!byName) walked.set(document, (byName = new Map()));
  const key = operationName ?? '';
  let found = byName.get(key);
  if (found === undefined) {
    const operation = getOperationAST(document, operationName);
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    // No such operation: grafast reports that itself, and runs nothing.
    found = operation ? reachesData(operation.selectionSet, fragments, new Set()) : false;
    byName.set(key, found);
  }
  return found;
}

// The requests refused here, so that their HTTP answer becomes 401 (keyed by
// grafserv's request object, which the execution's requestContext carries as
// `http` and processRequest receives as `requestDigest`).
const refused = new WeakSet<object>();

function refusal(args: { contextValue?: unknown; document: DocumentNode; operationName?: string | null | undefined; requestContext?: unknown }) {
  const context = args.contextValue as Grafast.Context | undefined;
  const anonymous = context?.sheratanAnonymousRole;
  if (anonymous === undefined || context?.pgSettings?.role !== anonymous) return undefined;
  if (!selectsData(args.document, args.operationName)) return undefined;
  const http = (args.requestContext as Partial<Grafast.RequestContext> | undefined)?.http;
  if (http) refused.add(http);
  return {
    errors: [
      new GraphQLError(REFUSAL, {
        extensions: { code: UNAUTHENTICATED },
      }),
    ],
  };
}

export const AuthenticationRequiredPlugin: GraphileConfig.Plugin = {
  name: 'SheratanAuthenticationRequiredPlugin',
  version: '1.0.0',
  description: 'Operations without a token may only introspect: anything else is answered "authentication required" (401) before it runs',
  grafast: {
    middleware: {
      // After prepareArgs: the context (pgSettings) is built by then.
      execute(next, event) {
        return refusal(event.args) ?? next();
      },
      subscribe(next, event) {
        return refusal(event.args) ?? next();
      },
    },
  },
  grafserv: {
    middleware: {
      // The same refusal before validation, for requests that carry no
      // Authorization header at all (the anonymous role is the only one they
      // can have; a bad token was answered 401 before grafserv): validating a
      // document costs far more than parsing it (pairwise fragment checks,
      // literals), and none of that is owed to a request that may not run it.
      // request-limits.ts has bounded the document by then.
      processGraphQLRequestBody(next, event) {
        const { query, operationName } = event.body;
        const request = event.request;
        if (request && !request.getHeader?.('authorization') && typeof query === 'string') {
          let document: DocumentNode | null = null;
          try {
            document = parse(query, { noLocation: true });
          } catch {
            // a syntax error: grafserv reports it
          }
          if (document && selectsData(document, typeof operationName === 'string' ? operationName : null)) {
            refused.add(request);
            throw new SafeError(REFUSAL, { statusCode: 401, code: UNAUTHENTICATED });
          }
        }
        return next();
      },
      async processRequest(next, event) {
        const result = await next();
        // Only the GraphQL answer (json or buffer) carries the refusal.
        if (!result || (result.type !== 'json' && result.type !== 'buffer') || !refused.has(event.requestDigest)) return result;
        return { ...result, statusCode: 401, headers: { ...result.headers, 'www-authenticate': 'Bearer realm="sheratan"' } };
      },
    },
  },
};

// A request's claims become the transaction-local settings PostGraphile
// applies before every query: grafast's context, for HTTP requests (claims
// from the request's state) and websockets (claims bound at connection_init).
import type { Config } from '../config/config.ts';
import { ANONYMOUS_ROLE, type ApiRole } from '../config/roles.ts';
import { requestState } from './request-state.ts';
import type { Claims } from './token-verification.ts';

/**
 * The settings for one request's transaction. `role` is one of our three API
 * roles (never a value from the token unchecked); claims go under `jwt.claims.`
 * so no claim can name a real Postgres setting.
 */
export function pgSettingsFor(claims: Claims | null, config: Pick<Config, 'statementTimeoutMs'>, forceRole?: ApiRole): Record<string, string> {
  const role = claims ? (forceRole ?? claims.role) : ANONYMOUS_ROLE;
  return {
    role,
    statement_timeout: `${config.statementTimeoutMs}ms`,
    'jwt.claims.role': role,
    'jwt.claims.tenant': claims?.tenant ?? '',
    'jwt.claims.sub': claims?.sub ?? '',
  };
}

// The pgSettings objects this context made, one per request or subscription
// (by identity, as grafast hands them to withPgClient): what tells a
// request's database session from PostGraphile's own (introspection).
const requestSettings = new WeakSet<object>();

/** Whether `pgSettings` are a request's (made by graphqlContext), not PostGraphile's own. */
export const isRequestSettings = (pgSettings: object | null): boolean => pgSettings !== null && requestSettings.has(pgSettings);

// The claims of each websocket, verified at its connection_init (live.ts):
// its subscriptions run as them, as an HTTP request runs as its token's.
const socketClaims = new WeakMap<object, Claims>();

/** Binds a socket (graphql-ws's `extra.socket`, grafast's `requestContext.ws.socket`) to the claims of its connection_init. */
export function bindSocketClaims(socket: object, claims: Claims): void {
  socketClaims.set(socket, claims);
}

/**
 * grafast's `context` for an endpoint: the one place where a request's claims
 * become its pgSettings (with `extraSettings`, the ANN accuracy settings),
 * beside the facts for its log line. `forceRole`: the endpoint's role
 * whatever the token names (reporting). A request with no state (none the
 * HTTP layer saw) runs as the anonymous role.
 */
export function graphqlContext(config: Pick<Config, 'statementTimeoutMs'>, extraSettings: Record<string, string>, forceRole?: ApiRole) {
  return (requestContext: Partial<Grafast.RequestContext>): Partial<Grafast.Context> => {
    const state = requestContext.node && requestState(requestContext.node.req);
    // A subscription over a socket runs as the socket's claims (none bound: anonymous).
    const socket = requestContext.ws?.socket;
    const claims = requestContext.ws ? ((socket && socketClaims.get(socket)) ?? null) : (state?.claims ?? null);
    const pgSettings = { ...extraSettings, ...pgSettingsFor(claims, config, forceRole) };
    requestSettings.add(pgSettings);
    return {
      pgSettings,
      // plugins/authentication-required.ts refuses data to requests that run as this role.
      sheratanAnonymousRole: ANONYMOUS_ROLE,
      ...(state ? { sheratanFacts: state.facts } : {}),
    };
  };
}

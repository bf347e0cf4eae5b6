// What the HTTP layer knows about one request, kept beside it (not on the
// express objects): its id, the verified claims, and the facts the GraphQL
// layer fills in for the log line and the metrics. The GraphQL context is
// built from it (graphqlContext in auth.ts); nothing else reads the claims.
import type { IncomingMessage } from 'node:http';
import type { GraphQLFacts } from '../../plugins/request-facts.ts';
import type { Claims } from './token-verification.ts';

export interface RequestState {
  requestId: string;
  /** Set by the authentication middleware: null for a request without a token. */
  claims?: Claims | null;
  /** Filled in by plugins/request-facts.ts through the GraphQL context. */
  facts: GraphQLFacts;
  /**
   * Set by admission (admission.ts) once the request holds a pool slot: the key
   * it waited under and how many requests were admitted while it waited.
   */
  admission?: { key: string; admittedBefore: number };
}

const states = new WeakMap<IncomingMessage, RequestState>();

/** Starts the state of a request (the first middleware does). */
export function beginRequest(req: IncomingMessage, requestId: string): RequestState {
  const state: RequestState = { requestId, facts: {} };
  states.set(req, state);
  return state;
}

export const requestState = (req: IncomingMessage): RequestState | undefined => states.get(req);

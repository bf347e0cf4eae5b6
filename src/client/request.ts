// One GraphQL request to the gateway, for the client helpers: POST with the
// bearer token; GraphQL errors become one Error naming every message.
export interface Endpoint {
  /** The gateway's GraphQL endpoint, e.g. http://127.0.0.1:5678/graphql. */
  url: string;
  /** A token for the tenant (npm run token), sent as `Authorization: Bearer …`. */
  token?: string;
}

export class GraphQLRequestError extends Error {
  readonly status: number;
  readonly errors: ReadonlyArray<{ message: string; extensions?: Record<string, unknown> }>;
  constructor(status: number, errors: ReadonlyArray<{ message: string; extensions?: Record<string, unknown> }>) {
    super(errors.map((e) => e.message).join('; ') || `the gateway answered HTTP ${status} without data`);
    this.name = 'GraphQLRequestError';
    this.status = status;
    this.errors = errors;
  }
}

export async function graphqlRequest<T>(endpoint: Endpoint, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(endpoint.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(endpoint.token ? { authorization: `Bearer ${endpoint.token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T | null; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
  if (body.errors?.length || !body.data) throw new GraphQLRequestError(res.status, body.errors ?? []);
  return body.data;
}

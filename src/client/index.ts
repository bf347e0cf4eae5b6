// The client library: what an application or a worker process imports
// (`sheratan-store/client`, compiled to dist/ by `npm run build`, so plain
// Node runs it). It talks to the gateway over HTTP only and imports nothing
// of the server.
export { createStoreClient, type ChunkInput, type DocumentInput, type SearchFilter, type SearchMatch, type SearchOptions, type StoreClient } from './store.ts';
export { runWorker, type ClaimedJob, type RunningWorker, type WorkerOptions } from './job-worker.ts';
export { GraphQLRequestError, graphqlRequest, type Endpoint } from './request.ts';

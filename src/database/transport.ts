// The transport types the pipelined `withPgClient` builds on, as the engine
// declares them (packages/pglite-server/src/transport.ts): the layers above reach the
// engine only through this box.
export { noPrepared, type BackendMessage, type Prepared, type SessionOptions, type Transport, type TransportSession } from '@sheratan/pglite-server';

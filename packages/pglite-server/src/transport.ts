// The shape of a transport to Postgres, declared once: the engine's channel
// (channel-transport.ts) is one, a `pg` pool (src/graphql/pipelined-client.ts's
// poolTransport) another, and the pipelined `withPgClient` composes either.
// Here because the engine is the lowest box that has one; src/database
// re-exports it for the layers above, which do not import the engine.

/** Prepared statements of one session: query key → statement name. */
export interface Prepared {
  names: Map<string, string>;
  /** Names are never reused within a session. */
  next: number;
  /** How many it may name; beyond them statements go unnamed (0: none, as behind a transaction pooler). */
  max: number;
}

/** Enough for every query shape a schema produces in practice. */
export const MAX_PREPARED = 200;

export const noPrepared = (max = MAX_PREPARED): Prepared => ({ names: new Map(), next: 1, max });

/** A backend message as pg-protocol parses it (the fields the client reads). */
export interface BackendMessage {
  name: string;
  fields?: unknown[];
  text?: string;
}

/** A session on Postgres: sends a batch of frontend messages and hands each backend reply to `onMessage`. */
export interface TransportSession {
  /** Resolves once the batch's replies are in (at its ReadyForQuery, or its error). */
  run(batch: Buffer, onMessage: (msg: BackendMessage) => void): Promise<void>;
  /** The statements it has prepared (they live as long as the connection). */
  prepared: Prepared;
  /** Done with it for now (back to its pool). */
  release(): void;
}

/** What a session is for, as its opener says. */
export interface SessionOptions {
  /**
   * It serves a client's request (rather than the schema's introspection or
   * other housekeeping on the same transport): a transport that cancels
   * unfinished work at shutdown cancels only these.
   */
  request?: boolean;
}

/** Where sessions come from. */
export interface Transport {
  session(options?: SessionOptions): Promise<TransportSession>;
}

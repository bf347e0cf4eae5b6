// Subscriptions over graphql-ws on /graphql: grafserv's own graphql-ws
// configuration (makeGraphQLWSConfig: the same schema, context, parse cache
// and error masking as HTTP) behind a socket server of our own, because
// grafserv's has no hook for what a socket must pass before it holds anything:
// - the token comes in connection_init (`{ authorization: "Bearer <jwt>" }`)
//   and is verified as an HTTP token is (auth.ts authenticate: signature,
//   audience, lifetime rules); no token closes the socket 4401 (graphql-ws's
//   Unauthorized), a refused one 4403 (Forbidden) with the reason; the socket
//   is closed 4403 when the token expires;
// - at most LIVE_MAX_SOCKETS_PER_TENANT sockets per tenant in this process
//   (more: 1013 Try Again Later), LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET operations
//   per socket, messages of LIVE_MAX_MESSAGE_BYTES (ws closes 1009 beyond);
// - only subscriptions: queries and mutations go over HTTP, where admission
//   and the body limits apply;
// - a slow consumer is dropped: a socket whose unsent bytes pass
//   LIVE_MAX_BUFFERED_BYTES, or whose message waits LIVE_SEND_TIMEOUT_MS to be
//   written, is cut; a subscription whose events pile up past
//   LIVE_MAX_QUEUED_EVENTS is ended (graphql/live-events.ts).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { CloseCode, makeServer, type ServerOptions } from 'graphql-ws';
import { getOperationAST, GraphQLError } from 'graphql';
import jwt from 'jsonwebtoken';
import { WebSocketServer, type WebSocket } from 'ws';
import { makeGraphQLWSConfig } from 'postgraphile/grafserv';
import type { Config } from '../config/config.ts';
import { log } from '../config/log.ts';
import { authenticate } from './token-verification.ts';
import { bindSocketClaims } from './graphql-context.ts';

/** graphql-ws's standard close codes, and the WebSocket one for "overloaded, try later". */
export const LIVE_CLOSE = {
  unauthorized: CloseCode.Unauthorized,
  forbidden: CloseCode.Forbidden,
  tryAgainLater: 1013,
  slowConsumer: 4008,
} as const;

export const TOO_MANY_SUBSCRIPTIONS = 'TOO_MANY_SUBSCRIPTIONS';
export const SUBSCRIPTIONS_ONLY = 'SUBSCRIPTIONS_ONLY';
const PING_INTERVAL_MS = 12_000;

type LiveConfig = Pick<
  Config,
  | 'jwtSecret'
  | 'jwtAudience'
  | 'jwtMaxAgeS'
  | 'jwtMaxLifetimeS'
  | 'jwtClockSkewS'
  | 'liveMaxSubscriptionsPerSocket'
  | 'liveMaxSocketsPerTenant'
  | 'liveMaxMessageBytes'
  | 'liveMaxBufferedBytes'
  | 'liveSendTimeoutMs'
>;

interface Extra {
  socket: WebSocket;
  request: IncomingMessage;
}

export interface LiveServer {
  /** For the HTTP server's `upgrade` event on the GraphQL path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Open sockets, and per tenant. */
  stats(): { sockets: number; tenants: Record<string, number> };
  close(): Promise<void>;
}

/** A close reason is at most 123 bytes of UTF-8. */
function reason(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= 123) return text;
  return (
    bytes
      .subarray(0, 120)
      .toString('utf8')
      .replace(/\uFFFD+$/, '') + '...'
  );
}

/** The Authorization value a client put in connection_init (`authorization`, `Authorization`, or a bare `token`). */
function authorizationOf(params: Readonly<Record<string, unknown>> | undefined): string | undefined {
  if (!params) return undefined;
  const value = params.authorization ?? params.Authorization;
  if (typeof value === 'string') return value;
  if (typeof params.token === 'string') return `Bearer ${params.token}`;
  return undefined;
}

/** When the token stops being valid (ms since 1970): `exp`, and with JWT_MAX_AGE its `iat` plus that age, with the clock skew. */
function validUntil(header: string, config: LiveConfig): number {
  const token = header.replace(/^Bearer\s+/i, '').trim();
  const { exp, iat } = (jwt.decode(token) ?? {}) as { exp?: number; iat?: number };
  let until = exp !== undefined ? exp + config.jwtClockSkewS : Infinity;
  if (config.jwtMaxAgeS !== undefined && iat !== undefined) until = Math.min(until, iat + config.jwtMaxAgeS + config.jwtClockSkewS);
  return until * 1000;
}

const isErrors = (value: unknown): value is readonly GraphQLError[] => Array.isArray(value);

export function createLiveServer(serv: Parameters<typeof makeGraphQLWSConfig>[0], config: LiveConfig): LiveServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.liveMaxMessageBytes });
  const perTenant = new Map<string, number>();
  const sockets = new Set<WebSocket>();
  const base = makeGraphQLWSConfig(serv) as ServerOptions<Record<string, unknown> | undefined, Extra>;

  const options: ServerOptions<Record<string, unknown> | undefined, Extra> = {
    ...base,
    onConnect(ctx) {
      const { socket } = ctx.extra;
      const header = authorizationOf(ctx.connectionParams);
      const result = authenticate(header, config);
      if (!result.ok) {
        socket.close(LIVE_CLOSE.forbidden, reason(`${result.code}: ${result.message}`));
        return false;
      }
      if (!result.claims) {
        socket.close(LIVE_CLOSE.unauthorized, reason('UNAUTHENTICATED: send { authorization: "Bearer <token>" } in connection_init'));
        return false;
      }
      const { tenant } = result.claims;
      const held = perTenant.get(tenant) ?? 0;
      if (held >= config.liveMaxSocketsPerTenant) {
        socket.close(LIVE_CLOSE.tryAgainLater, reason(`TOO_MANY_SOCKETS: this tenant holds ${held} sockets (LIVE_MAX_SOCKETS_PER_TENANT)`));
        return false;
      }
      perTenant.set(tenant, held + 1);
      bindSocketClaims(socket, result.claims);
      // The socket lives no longer than its token.
      const until = validUntil(header!, config);
      let timer: NodeJS.Timeout | undefined;
      const expire = (): void => {
        const left = until - Date.now();
        if (left > 0) {
          timer = setTimeout(expire, Math.min(left, 2 ** 31 - 1));
          return;
        }
        socket.close(LIVE_CLOSE.forbidden, 'TOKEN_EXPIRED: the token has expired: connect again with a new one');
      };
      if (Number.isFinite(until)) expire();
      socket.once('close', () => {
        clearTimeout(timer);
        const left = (perTenant.get(tenant) ?? 1) - 1;
        if (left > 0) perTenant.set(tenant, left);
        else perTenant.delete(tenant);
      });
      return true;
    },
    async onSubscribe(ctx, id, payload) {
      // graphql-ws has already entered this one in ctx.subscriptions.
      if (Object.keys(ctx.subscriptions).length > config.liveMaxSubscriptionsPerSocket) {
        return [
          new GraphQLError(`too many subscriptions on this socket: at most ${config.liveMaxSubscriptionsPerSocket} (LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET)`, {
            extensions: { code: TOO_MANY_SUBSCRIPTIONS },
          }),
        ];
      }
      const args = await base.onSubscribe!(ctx, id, payload);
      if (!args || isErrors(args)) return args;
      const operation = getOperationAST(args.document, args.operationName);
      if (operation && operation.operation !== 'subscription') {
        return [
          new GraphQLError(
            `only subscriptions are served over the socket: send ${operation.operation === 'query' ? 'queries' : 'mutations'} over HTTP (POST /graphql)`,
            {
              extensions: { code: SUBSCRIPTIONS_ONLY },
            },
          ),
        ];
      }
      return args;
    },
  };
  const server = makeServer(options);

  // A slow consumer: a send waiting too long to be written, or too much unsent.
  const pendingSince = new Map<WebSocket, number[]>();
  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const socket of sockets) {
        const oldest = pendingSince.get(socket)?.[0];
        if (oldest !== undefined && now - oldest > config.liveSendTimeoutMs) dropSlow(socket, 'LIVE_SEND_TIMEOUT_MS', { waitedMs: now - oldest });
        else if (socket.bufferedAmount > config.liveMaxBufferedBytes) dropSlow(socket, 'LIVE_MAX_BUFFERED_BYTES');
      }
    },
    Math.min(1000, config.liveSendTimeoutMs),
  ).unref();
  // Cut once: the sends of its other subscriptions, until its close is heard, are refused without another cut or log line.
  const cut = new WeakSet<WebSocket>();
  const dropSlow = (socket: WebSocket, limit: 'LIVE_MAX_BUFFERED_BYTES' | 'LIVE_SEND_TIMEOUT_MS', fields: Record<string, unknown> = {}): void => {
    if (cut.has(socket)) return;
    cut.add(socket);
    log('warn', 'live: a slow consumer dropped', { limit, bufferedBytes: socket.bufferedAmount, ...fields });
    // Its close frame would wait behind what it does not read: the connection is cut.
    socket.terminate();
  };

  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    sockets.add(socket);
    pendingSince.set(socket, []);
    // ws closes the socket itself on a protocol error (1002) or a message above maxPayload (1009); unheard, the error would end the process.
    socket.on('error', (err) => log('info', 'live: a socket closed on an error', { error: err.message }));
    let alive = true;
    socket.on('pong', () => (alive = true));
    const ping = setInterval(() => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, PING_INTERVAL_MS).unref();
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (cut.has(socket)) return reject(new Error('slow consumer'));
            if (socket.bufferedAmount > config.liveMaxBufferedBytes) {
              dropSlow(socket, 'LIVE_MAX_BUFFERED_BYTES');
              return reject(new Error('slow consumer'));
            }
            const pending = pendingSince.get(socket) ?? [];
            const started = Date.now();
            pending.push(started);
            socket.send(data, (err) => {
              const at = pending.indexOf(started);
              if (at >= 0) pending.splice(at, 1);
              if (err) reject(err);
              else resolve();
            });
          }),
        close: (code, why) => socket.close(code, why),
        onMessage: (cb) =>
          socket.on('message', async (data) => {
            try {
              await cb(data.toString());
            } catch (err) {
              try {
                socket.close(CloseCode.InternalServerError, reason((err as Error).message));
              } catch {
                /* already closed */
              }
            }
          }),
      },
      { socket, request },
    );
    socket.once('close', (code, why) => {
      clearInterval(ping);
      sockets.delete(socket);
      pendingSince.delete(socket);
      void closed(code, why.toString());
    });
  });

  return {
    handleUpgrade(req, socket, head) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    stats() {
      return { sockets: sockets.size, tenants: Object.fromEntries(perTenant) };
    },
    async close() {
      clearInterval(sweep);
      for (const socket of sockets) socket.close(1001, 'the gateway is shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      for (const socket of sockets) socket.terminate();
    },
  };
}

// Pipelined HTTP floods and what the gateway did with them, for the tests of
// issue 25's pipelining finding (test/security/attack-pipelining.test.ts,
// test/security/fair-admission.test.ts): raw sockets writing many requests at
// once, a victim's one-at-a-time queries, and an observer on the running
// gateway that records which requests reached the application (per socket)
// and how many requests admission let in while each one waited.
import http from 'node:http';
import net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestState } from '../../src/http/request-state.ts';
import type { Harness } from './harness.ts';

/** One request of a flood: /healthz, `{ __typename }` or a list (refused 401 without a token), as issue 25's attacker sent. */
export function pipelinedRequest(next: () => number, token: string | null): string {
  if (next() < 0.3) return 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  const body = JSON.stringify({ query: next() < 0.5 ? '{ __typename }' : '{ allDocuments { totalCount } }' });
  const auth = token ? `Authorization: Bearer ${token}\r\n` : '';
  return `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${auth}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

export interface PipelinedSocket {
  socket: net.Socket;
  /** The statuses of the answers read so far, in order (empty for a socket that does not read). */
  statuses(): number[];
  /** The code of the last answer's first error, if it had one. */
  lastCode(): string | undefined;
  closed: Promise<void>;
}

/**
 * Each client socket's own address and port, kept from its connection: once
 * the gateway closes a socket (429 PIPELINE_TOO_DEEP) Node no longer reports
 * them, and the socket could not be found among those the gateway served.
 */
const localOf = new WeakMap<net.Socket, string>();
const localAddressOf = (client: net.Socket): string => localOf.get(client) ?? `${client.localAddress}:${client.localPort}`;

/** Connects (from `localAddress`, any 127.x.y.z) and writes all of `requests` at once; reads the answers only if `read`. */
export function openPipeline(port: number, requests: string[], options: { read: boolean; localAddress?: string }): PipelinedSocket {
  const socket = net.connect({ port, host: '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  socket.once('connect', () => localOf.set(socket, `${socket.localAddress}:${socket.localPort}`));
  socket.on('error', () => undefined);
  let received = '';
  if (options.read) socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  else socket.pause();
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(requests.join(''));
  return {
    socket,
    statuses: () => [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])),
    lastCode: () => {
      const last = received.lastIndexOf('HTTP/1.1 ');
      return last < 0 ? undefined : /"code":"([A-Z_]+)"/.exec(received.slice(last))?.[1];
    },
    closed,
  };
}

/** One POST /graphql on a new connection (from `localAddress` if given): its status, error code and milliseconds. */
export function victimQuery(
  port: number,
  query: string,
  options: { token: string | null; localAddress?: string },
): Promise<{ status: number; code: string | undefined; ms: number }> {
  const started = performance.now();
  const body = JSON.stringify({ query });
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/graphql',
        method: 'POST',
        agent: false,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let code: string | undefined;
          try {
            code = (JSON.parse(text) as { errors?: Array<{ extensions?: { code?: string } }> }).errors?.[0]?.extensions?.code ?? undefined;
          } catch {
            code = 'NOT_JSON';
          }
          resolve({ status: res.statusCode!, code, ms: performance.now() - started });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export interface SocketRecord {
  /** Requests of this socket that reached the application (express). */
  handled: number;
  /** Of them, the most that were in the application at once. */
  mostAtOnce: number;
  inApp: number;
  /** The client's end of the socket. */
  remote: string;
}

export interface AdmissionRecord {
  key: string;
  /** Requests admitted while this one waited (admission.ts). */
  admittedBefore: number;
}

/**
 * Watches a running gateway: every request that reaches express (its
 * `app.handle`, which the server's pipelining wrapper calls) per socket, and
 * the admission facts of every answered request. Observation only: nothing
 * the gateway does is changed. `stop` detaches it.
 */
export function observeGateway(h: Harness) {
  // express calls app.handle for every request; its types do not declare it.
  type Handle = (req: IncomingMessage, res: ServerResponse, next?: unknown) => void;
  const app = h.gateway.gateway.app as unknown as { handle: Handle };
  const sockets = new Map<net.Socket, SocketRecord>();
  const admissions: AdmissionRecord[] = [];
  const handle = app.handle;
  app.handle = function (this: unknown, req: IncomingMessage, res: ServerResponse, next?: unknown) {
    let record = sockets.get(req.socket);
    if (!record) {
      record = { handled: 0, mostAtOnce: 0, inApp: 0, remote: `${req.socket.remoteAddress}:${req.socket.remotePort}` };
      sockets.set(req.socket, record);
    }
    const r = record;
    r.handled++;
    r.mostAtOnce = Math.max(r.mostAtOnce, ++r.inApp);
    res.once('close', () => {
      r.inApp--;
      const admission = requestState(req)?.admission;
      if (admission) admissions.push({ ...admission });
    });
    return handle.call(this, req, res, next);
  };
  return {
    sockets,
    admissions,
    /** The record of the gateway's side of a client socket (found by the client's address and port). */
    socketOf: (client: net.Socket): SocketRecord | undefined => [...sockets.values()].find((r) => r.remote === localAddressOf(client)),
    handled: (): number => [...sockets.values()].reduce((n, r) => n + r.handled, 0),
    stop(): void {
      app.handle = handle;
    },
  };
}

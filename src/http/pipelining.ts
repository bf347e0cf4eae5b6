// Pipelined HTTP/1.1 requests, served one at a time per socket and refused
// beyond a depth.
//
// Node's server parses every request in each chunk it reads from a socket
// (64 KiB: up to thousands of small requests) and emits 'request' for all of
// them at once; only their answers are sent in order. Twenty sockets each
// writing 3,000 pipelined requests (issue 25) thus put 60,000 requests into
// the middleware and the admission queue within seconds, and another tenant's
// request waited behind all of them (measured: 10,673 requests ahead of it in
// admission, 3 to 17 s). Here a socket's requests enter the application one at
// a time, the next once the previous answer is finished or abandoned, so a
// socket stands for one request at most in admission (which is fair between
// clients, admission.ts), whatever it pipelines; a socket with more than
// MAX_PIPELINED_REQUESTS unanswered requests gets 429 PIPELINE_TOO_DEEP for
// the next one, stops being read, and is closed once that answer is out:
// what it sent after is never handled.
//
// The next request of a socket starts in a later turn of the event loop than
// the answer before it, never in the same one. Node runs each request's
// listener from inside the parser, and the process.nextTick and promise
// queues are drained after each: a request answered without real I/O (an
// anonymous `{ __typename }`, a 401, /healthz) is finished before the parser
// reaches the next one, so a socket's whole chunk of pipelined requests ran
// one after another without the event loop turning (measured: 11.5 s without
// a turn, another tenant's connection accepted 32 s late, with 20 sockets of
// 3,000 anonymous requests). So each socket starts at most one request per
// turn, and a chunk of more than MAX_PIPELINED_REQUESTS is refused.
//
// What is left: Node parses the rest of the chunk that held the refused
// request whatever its listener does (destroying the socket does not stop
// it), so each connection still costs the parsing of one chunk (a few hundred
// dropped requests, tens of milliseconds of the event loop). An attacker who
// reconnects over and over pays one connection per chunk; nothing here bounds
// the rate of new connections (the per-address cap in gateway.ts bounds how
// many are open at once; a rate belongs to a proxy or firewall in front).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Requests one socket may have unanswered at once (the one being handled and
 * those parsed behind it). Browsers and HTTP client libraries do not pipeline
 * (one request at a time per connection); a client that pipelines deeper gets
 * a 429 and the connection closes.
 */
export const MAX_PIPELINED_REQUESTS = 16;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface SocketTurns {
  /** A request of this socket is in the application, or its answer closed in this turn of the event loop. */
  busy: boolean;
  /** Requests parsed behind it, in order. */
  waiting: Array<[IncomingMessage, ServerResponse]>;
  /** The socket went past the depth: its later requests are dropped. */
  refused: boolean;
}

const turnsOf = new WeakMap<Socket, SocketTurns>();

/** The 429 for a request past the depth; `Connection: close` makes Node close the socket once it is sent. */
function refuse(res: ServerResponse, depth: number): void {
  const body = JSON.stringify({
    errors: [
      {
        message:
          `more than ${depth} requests were pipelined on one connection without waiting for their answers ` +
          `(the limit is ${depth}); the connection closes after this answer: send the rest again, one at a time or on other connections`,
        extensions: { code: 'PIPELINE_TOO_DEEP' },
      },
    ],
  });
  res.writeHead(429, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Retry-After': '1',
    Connection: 'close',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}

/**
 * Reads nothing more from a refused socket. Node resumes a socket after every
 * request it parses (to read the next one), so a pause alone lasted until the
 * next message: 60,000 dropped requests were still parsed (3 s of the event
 * loop). Its 'resume' is emitted in a later tick and re-paused at once, before
 * the event loop reads again. The requests already parsed ahead of the refused
 * one are whole (their bodies came before its headers) and still answered.
 */
function stopReading(socket: Socket): void {
  socket.pause();
  socket.on('resume', () => socket.pause());
}

/** Wraps the server's request handler so that each socket's requests reach it one at a time, at most `depth` pending. */
export function servePipelinesInTurn(handler: Handler, depth = MAX_PIPELINED_REQUESTS): Handler {
  const dispatch = (turns: SocketTurns, socket: Socket, req: IncomingMessage, res: ServerResponse): void => {
    turns.busy = true;
    // 'close' comes for a finished answer and for an abandoned one (the socket closed) alike. The socket's
    // next request starts in the next turn of the event loop, never in this one (see the header).
    res.once('close', () =>
      setImmediate(() => {
        turns.busy = false;
        if (socket.destroyed) {
          turns.waiting.length = 0;
          return;
        }
        const next = turns.waiting.shift();
        if (next) dispatch(turns, socket, ...next);
      }),
    );
    handler(req, res);
  };
  return (req, res) => {
    const socket = req.socket;
    let turns = turnsOf.get(socket);
    if (!turns) {
      turns = { busy: false, waiting: [], refused: false };
      turnsOf.set(socket, turns);
    }
    // The rest of the chunk that held the refused request: never handled, dropped when the socket closes.
    if (turns.refused) return;
    if (!turns.busy) {
      dispatch(turns, socket, req, res);
      return;
    }
    if (1 + turns.waiting.length >= depth) {
      turns.refused = true;
      stopReading(socket);
      refuse(res, depth);
      return;
    }
    turns.waiting.push([req, res]);
  };
}

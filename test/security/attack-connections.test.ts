// Attack: sockets. Found by the attacker of issue 25: one anonymous client
// opening 19,900 idle sockets took every file descriptor the gateway's
// process had (its limit was 20,000): every other client's connection, and
// /healthz, was reset, for the ~20 s until the headers timeout closed them,
// and again as soon as the client reconnected. Nothing in the gateway counted
// sockets.
//
// The invariant, whatever the sockets of one address do (sit idle, send part
// of their headers, send a body slowly, or finish a request and keep the
// connection alive): that address holds at most MAX_CONNECTIONS_PER_ADDRESS
// of the gateway's sockets; those beyond are closed as they arrive, before a
// byte is read; another address is answered as usual meanwhile; and once the
// address's sockets close it may connect again (nothing leaks in the count).
// Other loopback addresses (127.0.0.2, …) stand for other clients.
import http from 'node:http';
import net from 'node:net';
import { MAX_CONNECTIONS_PER_ADDRESS } from '../../src/http/gateway.ts';
import { rng } from '../support/embeddings.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
let port: number;
beforeAll(async () => {
  h = await startHarness({ NODE_ENV: 'production', HEADERS_TIMEOUT_MS: '60000', BODY_TIMEOUT_MS: '60000', REQUEST_TIMEOUT_MS: '60000' });
  port = Number(new URL(h.url).port);
});
afterAll(() => h?.stop());

type Behaviour = 'idle' | 'partial headers' | 'slow body' | 'keep-alive';
const BEHAVIOURS: Behaviour[] = ['idle', 'partial headers', 'slow body', 'keep-alive'];

interface Opened {
  sockets: net.Socket[];
  /** Sockets the gateway has closed so far. */
  closed(): number;
  end(): Promise<void>;
}

/** Opens `count` sockets from `address`, each behaving as the generator says. */
async function open(address: string, count: number, seed: number): Promise<Opened> {
  const next = rng(seed);
  const sockets: net.Socket[] = [];
  let closed = 0;
  const ready: Array<Promise<void>> = [];
  for (let i = 0; i < count; i++) {
    const behaviour = BEHAVIOURS[Math.floor(next() * BEHAVIOURS.length)]!;
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: address });
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.once('close', () => closed++);
    ready.push(
      new Promise((resolve) => {
        socket.once('connect', () => {
          if (behaviour === 'partial headers') socket.write('POST /graphql HTTP/1.1\r\nHost: x\r\n');
          else if (behaviour === 'slow body')
            socket.write('POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"q');
          else if (behaviour === 'keep-alive') socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
          resolve();
        });
        socket.once('close', () => resolve());
      }),
    );
    sockets.push(socket);
    if (i % 200 === 199) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await Promise.all(ready);
  return {
    sockets,
    closed: () => closed,
    end: async () => {
      await Promise.all(sockets.map((s) => (s.destroyed ? undefined : new Promise((resolve) => s.once('close', resolve).destroy()))));
    },
  };
}

/** A request from 127.0.0.1 on a socket of its own: its status, or what went wrong. */
function healthz(): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get(`${h.url}/healthz`, { agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
  });
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 500));

test('one address holds at most MAX_CONNECTIONS_PER_ADDRESS sockets, whatever they do; another address is served meanwhile', async () => {
  const extra = 60;
  const flood = await open('127.0.0.2', MAX_CONNECTIONS_PER_ADDRESS + extra, 25);
  try {
    await settle();
    const stillOpen = flood.sockets.length - flood.closed();
    expect({ stillOpen, atMost: MAX_CONNECTIONS_PER_ADDRESS }).toEqual({
      stillOpen: Math.min(stillOpen, MAX_CONNECTIONS_PER_ADDRESS),
      atMost: MAX_CONNECTIONS_PER_ADDRESS,
    });
    expect(flood.closed()).toBeGreaterThanOrEqual(extra);
    // Another client, and an authenticated search, are answered as usual.
    expect(await healthz()).toBe(200);
    const res = await h.graphql('{ allDocuments { totalCount } }');
    expect(res.body.errors).toBeUndefined();
  } finally {
    await flood.end();
  }
});

test('the count follows closes: an address whose sockets closed may open as many again, and two addresses are counted apart', async () => {
  for (const [round, address] of [
    [1, '127.0.0.3'],
    [2, '127.0.0.3'],
    [3, '127.0.0.4'],
  ] as const) {
    const batch = await open(address, MAX_CONNECTIONS_PER_ADDRESS, 100 + round);
    await settle();
    // Every one of them is still open: the earlier rounds' sockets were all counted out.
    expect({ round, closed: batch.closed() }).toEqual({ round, closed: 0 });
    expect(await healthz()).toBe(200);
    await batch.end();
    await settle();
  }
});

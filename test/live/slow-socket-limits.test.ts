// A socket that stops reading is cut, by either of the two socket limits
// (src/http/live.ts), while a subscriber on another socket of the same gateway
// keeps receiving every event: LIVE_MAX_BUFFERED_BYTES (more than that unsent
// to the socket) and LIVE_SEND_TIMEOUT_MS (a message unwritten that long).
// Both backends, the real gateway and real sockets (the `ws` client speaking
// graphql-transport-ws), events made by real mutations. The slow client
// pauses its TCP socket: the kernel's buffers fill (several MB on loopback,
// however large the machine makes them: events are written until the cut),
// then the gateway's writes wait and its unsent bytes grow. Each limit runs
// on its own gateway with the other limit out of reach, so the cut is that
// limit's; the gateway's log line names it. Also: both limits' defaults as
// the README documents them, and a bad value refused naming the variable.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { parseConfig } from '../../src/config/config.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { startHarness, type Harness } from '../support/harness.ts';

const TENANT = 'slow-socket';
const DOCUMENTS = `subscription { documentChanged { operation document { rowId content } } }`;
const CREATE = `mutation ($title: String!, $content: String!) { createDocument(input: { document: { title: $title, content: $content } }) { document { rowId } } }`;
/** Enough events to fill any loopback socket's kernel buffers many times over; the cut comes long before. */
const MAX_EVENTS = 2000;

interface Closed {
  code: number;
  reason: string;
}

/** A graphql-transport-ws client on a raw `ws` socket: its subscriptions' document ids in the order received, and a TCP socket it can stop reading. */
interface RawClient {
  /** Per subscription (by index), the rowIds of the events received. */
  received: string[][];
  errors: unknown[];
  /** Resolves when the socket is closed (as this client sees it: after it reads again, if paused). */
  closed: Promise<Closed>;
  /** Stops reading from the TCP socket: what the gateway writes stays in the kernel's buffers, then in the gateway's. */
  pause(): void;
  resume(): void;
  close(): void;
}

async function connect(h: Harness, subscriptions: number): Promise<RawClient> {
  const ws = new WebSocket(h.url.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws');
  const received: string[][] = Array.from({ length: subscriptions }, () => []);
  const errors: unknown[] = [];
  const closed = new Promise<Closed>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  // A cut connection may reach the client as a reset; it is seen as the close (1006).
  ws.on('error', () => undefined);
  let acked!: () => void;
  const ack = new Promise<void>((resolve) => (acked = resolve));
  ws.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { type: string; id?: string; payload?: unknown };
    if (message.type === 'connection_ack') acked();
    else if (message.type === 'next') {
      const payload = message.payload as { data?: { documentChanged: { document: { rowId: string } | null } }; errors?: unknown[] };
      if (payload.errors) errors.push(...payload.errors);
      const id = payload.data?.documentChanged.document?.rowId;
      if (id) received[Number(message.id)]!.push(id);
    } else if (message.type === 'error') errors.push(message.payload);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('close', (code) => reject(new Error(`the socket closed (${code}) before it opened`)));
  });
  ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${h.token('sheratan_app', TENANT)}` } }));
  await ack;
  for (let i = 0; i < subscriptions; i++) ws.send(JSON.stringify({ id: String(i), type: 'subscribe', payload: { query: DOCUMENTS } }));
  const tcp = (): Socket => (ws as unknown as { _socket: Socket })._socket;
  return {
    received,
    errors,
    closed,
    pause: () => tcp().pause(),
    resume: () => tcp().resume(),
    close: () => ws.terminate(),
  };
}

/** Resolves once `check` holds (polled); `timeoutMs` only bounds a failing test. */
async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The gateway's log lines (LOG_LEVEL=warn), captured from stderr while a gateway of this file runs. */
let logged: Array<Record<string, unknown>> = [];
const realWrite = process.stderr.write.bind(process.stderr);
function captureLog(): void {
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    let others = '';
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        logged.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        others += `${line}\n`;
      }
    }
    return others ? realWrite(others, ...(rest as [])) : true;
  }) as typeof process.stderr.write;
}
const cuts = () => logged.filter((l) => typeof l.msg === 'string' && /slow consumer/.test(l.msg));

/**
 * One gateway whose limits are `env`: a slow client (its TCP socket paused
 * from the start, `slowSubscriptions` subscriptions to documentChanged) and a
 * fast one (one subscription, reading) of the same tenant; documents of
 * `contentChars` characters are created one at a time, each awaited by the
 * fast client, until the gateway has cut the slow socket. Then three more.
 */
async function slowAndFast(h: Harness, slowSubscriptions: number, contentChars: number) {
  logged = [];
  const live = h.gateway.gateway.live;
  const events = h.gateway.gateway.liveEvents;
  const fast = await connect(h, 1);
  const slow = await connect(h, slowSubscriptions);
  await until(() => events.size === slowSubscriptions + 1, 'the subscriptions to listen');
  await events.ready();
  expect(live.stats().sockets).toBe(2);
  slow.pause();

  const created: string[] = [];
  const token = h.token('sheratan_app', TENANT);
  const create = async (): Promise<void> => {
    const content = randomBytes(contentChars / 2).toString('hex');
    const res = await h.graphql<{ createDocument: { document: { rowId: string } } }>(CREATE, {
      variables: { title: `event ${created.length}`, content },
      token,
    });
    expect(res.body.errors).toBeUndefined();
    created.push(res.body.data!.createDocument.document.rowId);
    await until(() => fast.received[0]!.length === created.length, `the fast subscriber to receive event ${created.length}`);
  };
  while (live.stats().sockets === 2 && created.length < MAX_EVENTS) await create();
  // The slow socket is gone on the gateway's side, and its subscriptions with it.
  expect(live.stats().sockets).toBe(1);
  await until(() => events.size === 1, "the slow socket's subscriptions to stop listening");
  const atCut = created.length;
  for (let i = 0; i < 3; i++) await create();

  // The fast subscriber got every event, in order, the ones after the cut too.
  expect(fast.received[0]).toEqual(created);
  expect(fast.errors).toEqual([]);

  // Reading again, the slow client gets what the kernel held, then the connection ends: no close frame (1006).
  slow.resume();
  expect(await slow.closed).toEqual({ code: 1006, reason: '' });
  // Each subscription got the events before the cut, in order, and not all of them (one message at least was left unwritten).
  for (const ids of slow.received) expect(ids).toEqual(created.slice(0, ids.length));
  expect(Math.max(...slow.received.map((ids) => ids.length))).toBeLessThanOrEqual(atCut);
  expect(slow.received.flat().length).toBeLessThan(atCut * slowSubscriptions);
  expect(slow.errors).toEqual([]);
  fast.close();
  await fast.closed;
  return { created, atCut };
}

describe('LIVE_MAX_BUFFERED_BYTES (64 KiB; LIVE_SEND_TIMEOUT_MS out of reach)', () => {
  let h: Harness;
  beforeAll(async () => {
    captureLog();
    h = await startHarness({
      LIVE_MAX_BUFFERED_BYTES: String(64 * 1024),
      LIVE_SEND_TIMEOUT_MS: '3600000',
      EMBEDDING_WORKER_CONCURRENCY: '0',
      LOG_LEVEL: 'warn',
    });
  }, 240_000);
  afterAll(async () => {
    process.stderr.write = realWrite;
    await h?.stop();
  });

  test('a socket that stops reading is cut once more than LIVE_MAX_BUFFERED_BYTES wait unsent to it; a subscriber on another socket receives every event', async () => {
    // Each message (about 40 KB) fits under the limit, so a reading socket never holds more than the limit unsent
    // with its one subscription; the slow socket's eight subscriptions each leave one waiting once the kernel is full.
    await slowAndFast(h, 8, 40_000);
    // One line for the one socket cut (its other subscriptions' sends after the cut add none), naming the limit.
    expect(cuts()).toEqual([expect.objectContaining({ level: 'warn', limit: 'LIVE_MAX_BUFFERED_BYTES', bufferedBytes: expect.any(Number) })]);
    expect(cuts()[0]!.bufferedBytes).toBeGreaterThan(64 * 1024);
  }, 300_000);
});

describe('LIVE_SEND_TIMEOUT_MS (500 ms; LIVE_MAX_BUFFERED_BYTES out of reach)', () => {
  let h: Harness;
  beforeAll(async () => {
    captureLog();
    h = await startHarness({
      LIVE_SEND_TIMEOUT_MS: '500',
      LIVE_MAX_BUFFERED_BYTES: String(1024 * 1024 * 1024),
      EMBEDDING_WORKER_CONCURRENCY: '0',
      LOG_LEVEL: 'warn',
    });
  }, 240_000);
  afterAll(async () => {
    process.stderr.write = realWrite;
    await h?.stop();
  });

  test('a socket that stops reading is cut once a message has waited LIVE_SEND_TIMEOUT_MS to be written; a subscriber on another socket receives every event', async () => {
    // Each message (about 200 KB) stays far under the byte limit: only the wait cuts the socket.
    await slowAndFast(h, 1, 200_000);
    expect(cuts()).toEqual([expect.objectContaining({ level: 'warn', limit: 'LIVE_SEND_TIMEOUT_MS', waitedMs: expect.any(Number) })]);
    expect(cuts()[0]!.waitedMs).toBeGreaterThan(500);
  }, 300_000);
});

test('the documented defaults: LIVE_MAX_BUFFERED_BYTES 1 MiB and LIVE_SEND_TIMEOUT_MS 10000 when unset; a bad value is refused naming the variable', () => {
  const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  expect(readme).toContain('| `LIVE_MAX_QUEUED_EVENTS` / `LIVE_MAX_BUFFERED_BYTES` / `LIVE_SEND_TIMEOUT_MS` | 100 / 1 MiB / 10000 |');
  expect(parseConfig({})).toMatchObject({ liveMaxQueuedEvents: 100, liveMaxBufferedBytes: 1024 * 1024, liveSendTimeoutMs: 10_000 });
  expect(parseConfig({ LIVE_MAX_BUFFERED_BYTES: '', LIVE_SEND_TIMEOUT_MS: '' })).toMatchObject({
    liveMaxBufferedBytes: 1024 * 1024,
    liveSendTimeoutMs: 10_000,
  });
  expect(parseConfig({ LIVE_MAX_BUFFERED_BYTES: '65536', LIVE_SEND_TIMEOUT_MS: '500' })).toMatchObject({ liveMaxBufferedBytes: 65536, liveSendTimeoutMs: 500 });
  expect(() => parseConfig({ LIVE_MAX_BUFFERED_BYTES: '1MiB' })).toThrow(
    /^LIVE_MAX_BUFFERED_BYTES must be an integer between 1024 and 1073741824, not "1MiB"$/,
  );
  expect(() => parseConfig({ LIVE_MAX_BUFFERED_BYTES: '512' })).toThrow(/^LIVE_MAX_BUFFERED_BYTES must be an integer between 1024 and 1073741824, not 512$/);
  expect(() => parseConfig({ LIVE_SEND_TIMEOUT_MS: '10s' })).toThrow(/^LIVE_SEND_TIMEOUT_MS must be an integer between 100 and 3600000, not "10s"$/);
  expect(() => parseConfig({ LIVE_SEND_TIMEOUT_MS: '0' })).toThrow(/^LIVE_SEND_TIMEOUT_MS must be an integer between 100 and 3600000, not 0$/);
});

// Attack: pipelined HTTP. Found by the attacker of issue 25: 5 to 20 sockets,
// each writing 500 to 3,000 small requests (GraphQL POSTs, anonymous or with
// a token, and GET /healthz) in one write and never reading an answer, made
// another tenant's one-field query wait 3.4 to 17.2 s on the embedded engine
// and 5.1 to 9.4 s on a server (about 20 ms otherwise); with 20 × 3,000 the
// gateway's RSS grew by 580 MB and did not shrink. Every per-request limit held (body size, timeouts,
// admission), and the per-address socket cap does not apply (20 sockets).
//
// What was ruled out (so the fix is not a small local one): Node 24 already
// starts a socket's pipelined requests one at a time (the next is parsed
// only once the previous is answered: counted with a request listener), so
// a cap on requests in flight per socket never triggers; starting each
// request in its own event-loop turn (setImmediate) did not shorten the wait
// (9.5 s). Admission hands slots over in order (and 20 streams stay under
// its 30 slots). Pipelining is what matters: 20 clients sending the same
// requests one after another (keep-alive, reading each answer) delayed the
// other tenant's query by at most 161 ms, while 20 sockets that wrote 3,000
// each at once (even reading) delayed it 9.1 s, the whole of the burst: it
// was answered only once all 60,000 were. The same happens with a bare
// node:http server (Node 24, no express, no database): a request on a new
// connection reached its handler only after all 60,000 pipelined requests of
// 20 sockets were served (2.4 s). So it is Node's server going from one
// pipelined request to the next without serving other sockets; a fix must
// refuse or pace pipelines itself (a socket whose next request is already
// buffered when its answer finishes), or sit behind a proxy that does not
// forward pipelines (why setImmediate per request did not help is not
// understood yet: the place to look next). The invariant below is what
// issue 25 asks (no tenant may make another wait more than a bound).
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { rng } from '../support/embeddings.ts';
import { startHarness, type Harness } from '../support/harness.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

let h: Harness;
let port: number;
beforeAll(async () => {
  h = await startHarness({ NODE_ENV: 'production' });
  port = Number(new URL(h.url).port);
});
afterAll(() => h?.stop());

function request(next: () => number, token: string | null): string {
  if (next() < 0.3) return 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  const body = JSON.stringify({ query: next() < 0.5 ? '{ __typename }' : '{ allDocuments { totalCount } }' });
  const auth = token ? `Authorization: Bearer ${token}\r\n` : '';
  return `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${auth}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** Opens sockets that each write `depth` pipelined requests at once; they never read (reading: their answers are counted). */
function pipeline(sockets: number, depth: number, seed: number, options: { read: boolean; token: string | null }) {
  const next = rng(seed);
  const opened = Array.from({ length: sockets }, () => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = '';
    const answers = (): number => received.split('HTTP/1.1 ').length - 1;
    if (options.read) socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    else socket.pause();
    socket.write(Array.from({ length: depth }, () => request(next, options.token)).join(''));
    return { socket, answers, received: () => received };
  });
  return { opened, end: () => opened.forEach(({ socket }) => socket.destroy()) };
}

async function tenantWait(): Promise<{ ms: number; ok: boolean }> {
  const started = performance.now();
  const res = await h.graphql('{ allDocuments { totalCount } }', { token: h.token('sheratan_app', 'other') });
  return { ms: Math.round(performance.now() - started), ok: res.status === 200 && !res.body.errors };
}

// Skipped: fails on both backends (3.4–17.2 s waits, see the header); the cause is not found yet.
test.skip('deep pipelines from non-reading sockets neither make another tenant wait nor grow the heap', async () => {
  const next = rng(2525);
  const results: Array<Record<string, unknown>> = [];
  for (let round = 0; round < 3; round++) {
    const sockets = 5 + Math.floor(next() * 15);
    const depth = 500 + Math.floor(next() * 2500);
    const token = next() < 0.5 ? null : h.token('sheratan_app', 'acme');
    gc();
    const heapBefore = v8.getHeapStatistics().used_heap_size;
    const flood = pipeline(sockets, depth, round, { read: false, token });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const waits = [await tenantWait(), await tenantWait()];
    gc();
    const heapMiB = (v8.getHeapStatistics().used_heap_size - heapBefore) / MiB;
    flood.end();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const worst = Math.max(...waits.map((w) => w.ms));
    const summary = { round, sockets, depth, anonymous: token === null, worstWaitMs: worst, heapMiB: Math.round(heapMiB) };
    results.push({ ...summary, ok: waits.every((w) => w.ok) && worst < 2000 && heapMiB < 50 });
  }
  expect(results).toEqual(results.map((r) => ({ ...r, ok: true })));
}, 120_000);

// An idle keep-alive socket outlives the timeout its answers advertise by
// KEEP_ALIVE_GRACE_MS: a client whose timers run late (a busy process; fetch
// drops a socket a second before the advertised timeout) must not send its
// next request into a socket the server has just closed (ECONNRESET, seen on
// loaded test runs with Node's default grace of one second).
import net from 'node:net';
import { KEEP_ALIVE_GRACE_MS } from '../../src/http/gateway.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

/** Sends one GET /healthz on `socket` and resolves with the whole answer's head. */
function ask(socket: net.Socket, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed || socket.readyState !== 'open') return reject(new Error('the server had closed the socket'));
    let got = '';
    const onData = (chunk: Buffer) => {
      got += chunk.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(got);
      if (end >= 0 && length && got.length >= end + 4 + Number(length[1])) {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(got.slice(0, end));
      }
    };
    const onClose = () => reject(new Error(`the server closed the socket (answer so far: ${JSON.stringify(got.slice(0, 200))})`));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(`GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`);
  });
}

test('a keep-alive socket idle just past its advertised timeout still takes the next request', async () => {
  const url = new URL(h.url);
  const socket = net.connect(Number(url.port), url.hostname);
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('connect', r));
  const head = await ask(socket, url.host);
  const advertised = Number(/keep-alive: timeout=(\d+)/i.exec(head)?.[1]);
  expect(advertised).toBeGreaterThan(0);
  expect(KEEP_ALIVE_GRACE_MS).toBeGreaterThanOrEqual(3_000);
  // Idle two seconds past the advertised timeout, as a late client would be
  // (with Node's default grace of one second the socket is gone by then).
  await new Promise((r) => setTimeout(r, advertised * 1000 + 2_000));
  expect(await ask(socket, url.host)).toMatch(/^HTTP\/1\.1 200/);
  socket.destroy();
}, 30_000);

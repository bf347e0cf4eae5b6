// The embedded listener under a hostile client (issue 25 item 6): wrong
// passwords earn a growing wait per source address and login, which another
// address (or another login) does not share and the right password resets;
// a client that does not read its results stalls only itself and cannot grow
// the engine's memory past a bound; a cancel request is answered as
// unsupported. Real sockets throughout; times are asserted as lower bounds
// (a slow machine only makes them longer) or against the back-off itself.
import net from 'node:net';
import { rmSync } from 'node:fs';
import pg from 'pg';
import type { EmbeddedEngine } from '@sheratan/pglite-server';
import { startSupervisedEngine } from './support/supervised-engine.ts';
import { DEFAULT_CLUSTER_LIMITS, loginDelayMs } from '@sheratan/pglite-server';
import { describeEmbedded, tempDataDir } from './support/backend.ts';

test('the back-off doubles after the free failures, is capped, and holds a guesser to a few attempts a minute', () => {
  for (const limits of [
    DEFAULT_CLUSTER_LIMITS,
    { loginFreeFailures: 0, loginBaseDelayMs: 1, loginMaxDelayMs: 7 },
    { loginFreeFailures: 5, loginBaseDelayMs: 300, loginMaxDelayMs: 300 },
  ]) {
    let previous = 0;
    for (let failures = 0; failures < 60; failures++) {
      const d = loginDelayMs(failures, limits);
      expect(d).toBeGreaterThanOrEqual(previous);
      expect(d).toBeLessThanOrEqual(limits.loginMaxDelayMs);
      if (failures < limits.loginFreeFailures) expect(d).toBe(0);
      else if (failures > limits.loginFreeFailures && d < limits.loginMaxDelayMs) expect(d).toBe(2 * previous);
      previous = d;
    }
  }
  // With the defaults: how many guesses fit in the first minute, and in each minute after.
  let elapsed = 0;
  let guesses = 0;
  for (let failures = 0; elapsed < 60_000; failures++) {
    elapsed += loginDelayMs(failures, DEFAULT_CLUSTER_LIMITS);
    guesses++;
  }
  expect(guesses).toBeLessThan(20);
  expect(60_000 / DEFAULT_CLUSTER_LIMITS.loginMaxDelayMs).toBeLessThanOrEqual(2);
});

describeEmbedded("it tests the embedded engine's own listener", 'the embedded listener against a hostile client', () => {
  let dataDir: string;
  let engine: EmbeddedEngine;
  const LIMITS = { loginFreeFailures: 2, loginBaseDelayMs: 1000, loginMaxDelayMs: 4000, loginMaxPending: 3, maxPendingOutputBytes: 8 * 1024 * 1024 };
  const GUESSED = 'guessed_login';
  const PASSWORD = 'guessed-login-password';

  beforeAll(async () => {
    dataDir = tempDataDir();
    engine = await startSupervisedEngine(dataDir, { purpose: 'test', limits: LIMITS });
    const setup = new pg.Client(engine.url());
    await setup.connect();
    await setup.query(`create role ${GUESSED} login password '${PASSWORD}'`);
    await setup.end();
  });
  afterAll(async () => {
    await engine.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A socket from `localAddress` (any 127.0.0.0/8 address reaches the loopback listener). */
  const from = (localAddress: string) => () => {
    const socket = new net.Socket();
    const connect = socket.connect.bind(socket) as (options: net.TcpSocketConnectOpts) => net.Socket;
    socket.connect = ((port: number, host: string) => connect({ port, host, localAddress })) as never;
    return socket;
  };

  /** Logs in with pg as `user`; resolves with how long it took and the outcome. */
  async function login(user: string, password: string, source = '127.0.0.1'): Promise<{ ms: number; ok: boolean; code?: string }> {
    const started = Date.now();
    const client = new pg.Client({ host: engine.host, port: engine.port, database: 'sheratan', user, password, stream: from(source) });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.end();
      return { ms: Date.now() - started, ok: true };
    } catch (err) {
      return { ms: Date.now() - started, ok: false, code: (err as { code?: string }).code };
    }
  }

  test('wrong passwords wait longer and longer per source; another source and the right password are not held back by them', async () => {
    const waits: number[] = [];
    const ends: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await login(GUESSED, `wrong-${i}`);
      expect(r).toMatchObject({ ok: false, code: '28P01' });
      waits.push(r.ms);
      ends.push(Date.now());
    }
    // The back-off counts from the previous refusal, not from when the next attempt connects: attempt k was
    // refused at least the back-off of the k failures before it after attempt k-1 was (slowness only adds).
    for (let k = 1; k < ends.length; k++) expect(ends[k]! - ends[k - 1]!).toBeGreaterThanOrEqual(loginDelayMs(k, LIMITS) - 50);
    // So a guesser's rate: 5 attempts took at least 0+0+1+2+4 s.
    const rate = 5 / (waits.reduce((a, b) => a + b, 0) / 1000);
    expect(rate).toBeLessThan(1);

    // The source is now held for 4 s; from another address the right password (and a wrong one) go at once,
    // and so does another login from the same address.
    const other = await login(GUESSED, PASSWORD, '127.0.0.2');
    expect(other.ok).toBe(true);
    expect(other.ms).toBeLessThan(loginDelayMs(5, LIMITS));
    const owner = await login('sheratan', engine.password);
    expect(owner.ok).toBe(true);
    expect(owner.ms).toBeLessThan(loginDelayMs(5, LIMITS));

    // Parallel guesses from the held source are taken one at a time, and past loginMaxPending refused at once.
    const parallel = await Promise.all(Array.from({ length: 6 }, (_, i) => login(GUESSED, `parallel-${i}`)));
    expect(parallel.filter((r) => r.code === '53300').length).toBeGreaterThanOrEqual(6 - LIMITS.loginMaxPending);
    expect(parallel.every((r) => !r.ok)).toBe(true);

    // The right password from the held source waits its turn, succeeds, and resets the back-off.
    const right = await login(GUESSED, PASSWORD);
    expect(right.ok).toBe(true);
    expect(right.ms).toBeGreaterThanOrEqual(LIMITS.loginMaxDelayMs - 50);
    const after = await login(GUESSED, 'wrong-again');
    expect(after).toMatchObject({ ok: false, code: '28P01' });
    expect(after.ms).toBeLessThan(LIMITS.loginMaxDelayMs);
  }, 120_000);

  /** A raw connection logged in as the owner, ready for queries; `read` false stops reading its replies. */
  async function rawSession(): Promise<net.Socket> {
    const socket = net.connect(engine.port, engine.host);
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    const params = Buffer.from(`user\0sheratan\0database\0sheratan\0\0`);
    const head = Buffer.alloc(8);
    head.writeInt32BE(8 + params.length, 0);
    head.writeInt32BE(196608, 4);
    socket.write(Buffer.concat([head, params]));
    let got = Buffer.alloc(0);
    const until = (byte: number) =>
      new Promise<void>((resolve) => {
        const on = (d: Buffer) => {
          got = Buffer.concat([got, d]);
          if (got.includes(byte)) {
            socket.off('data', on);
            resolve();
          }
        };
        socket.on('data', on);
      });
    await until(0x52); // AuthenticationCleartextPassword
    got = Buffer.alloc(0);
    const pw = Buffer.from(`${engine.password}\0`);
    const p = Buffer.alloc(5);
    p.write('p');
    p.writeInt32BE(4 + pw.length, 1);
    socket.write(Buffer.concat([p, pw]));
    await until(0x5a); // ReadyForQuery
    return socket;
  }
  const query = (sql: string): Buffer => {
    const body = Buffer.from(`${sql}\0`);
    const head = Buffer.alloc(5);
    head.write('Q');
    head.writeInt32BE(4 + body.length, 1);
    return Buffer.concat([head, body]);
  };

  test('a client that never reads a 600 MB result stalls only itself: the engine holds a bounded amount, then ends it', async () => {
    const other = new pg.Client(engine.url());
    await other.connect();
    try {
      global.gc?.();
      const before = process.memoryUsage().rss;
      const hog = await rawSession();
      hog.pause(); // never reads again
      const closed = new Promise<void>((resolve) => hog.once('close', () => resolve()));
      hog.write(query("select repeat('x', 1000000) from generate_series(1, 600)"));
      // Another client is served meanwhile (once the statement, which nothing can interrupt, is over).
      expect((await other.query('select 1 as n')).rows).toEqual([{ n: 1 }]);
      let peak = 0;
      for (let i = 0; i < 20; i++) {
        peak = Math.max(peak, process.memoryUsage().rss - before);
        expect((await other.query('select 2 as n')).rows).toEqual([{ n: 2 }]);
      }
      // Unbounded, the 600 MB would sit in the engine's socket buffer.
      expect(peak).toBeLessThan(150 * 1024 * 1024);
      hog.resume();
      await closed;
    } finally {
      await other.end();
    }
  }, 120_000);

  test('a client that pipelines queries without reading is stopped after a bounded backlog, and others keep working', async () => {
    const other = new pg.Client(engine.url());
    await other.connect();
    try {
      global.gc?.();
      const before = process.memoryUsage().rss;
      const hog = await rawSession();
      hog.pause();
      // 1,500 replies of 200 kB each: 300 MB if all were run and buffered.
      hog.write(Buffer.concat(Array.from({ length: 1500 }, () => query("select repeat('y', 200000)"))));
      let peak = 0;
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 100));
        peak = Math.max(peak, process.memoryUsage().rss - before);
        expect((await other.query('select 3 as n')).rows).toEqual([{ n: 3 }]);
      }
      expect(peak).toBeLessThan(150 * 1024 * 1024);
      // The stalled client holds no backend: another client's transaction goes through.
      await other.query('begin');
      await other.query('select 4');
      await other.query('commit');
      hog.destroy();
      expect((await other.query('select 5 as n')).rows).toEqual([{ n: 5 }]);
    } finally {
      await other.end();
    }
  }, 60_000);

  test('a cancel request is answered as unsupported, and the query it names runs to its end', async () => {
    const client = new pg.Client(engine.url());
    await client.connect();
    try {
      const running = client.query('select pg_sleep(0.5), 7 as n');
      const reply = await new Promise<Buffer>((resolve) => {
        const socket = net.connect(engine.port, engine.host);
        const parts: Buffer[] = [];
        socket.on('data', (d) => parts.push(d));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(Buffer.concat(parts)));
        const msg = Buffer.alloc(16);
        msg.writeInt32BE(16, 0);
        msg.writeInt32BE(80877102, 4);
        msg.writeInt32BE(1, 8);
        msg.writeInt32BE(12345, 12);
        socket.on('connect', () => socket.write(msg));
      });
      expect(reply[0]).toBe(0x45); // ErrorResponse
      expect(reply.toString('utf8')).toMatch(/C0A000\0Mcancel requests are not supported by the embedded engine/);
      expect((await running).rows).toEqual([{ pg_sleep: '', n: 7 }]);
    } finally {
      await client.end();
    }
  });
});

// Random frames at the embedded engine's listener, before and after logging
// in, while GraphQL traffic runs: the traffic sees no error and no stall
// beyond a small bound, and the engine serves new clients afterwards.
import net from 'node:net';
import pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { describeEmbedded } from '../support/backend.ts';
import { rng } from '../support/embeddings.ts';

describeEmbedded("it fuzzes the embedded engine's own listener", 'random frames at the embedded listener', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.stop());

  const next = rng(20261201);
  const int = (n: number): number => Math.floor(next() * n);
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  const int32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n | 0);
    return b;
  };
  const frame = (type: number, body: Buffer, length = body.length + 4): Buffer => Buffer.concat([Buffer.from([type]), int32(length), body]);

  /** A frame a broken or hostile client might send: random type, sometimes a lying length, random or half-valid body. */
  function randomFrame(): Buffer {
    const type = next() < 0.5 ? 'QPBEDCHSdcfpFX'.charCodeAt(int(14)) : int(256);
    const body =
      next() < 0.3 ? Buffer.from(`${['select', 'copy', 'begin', 'listen', 'prepare'][int(5)]} ${bytes(int(20)).toString('latin1')}\0`) : bytes(int(64));
    const r = next();
    if (r < 0.1) return frame(type, body, 0x7fffffff); // announces 2 GiB
    if (r < 0.2) return frame(type, body, int(4)); // shorter than its own length field
    return frame(type, body);
  }
  /** What a client sends before logging in: random startup codes and lengths. */
  function randomStartup(): Buffer {
    const codes = [80877103, 80877104, 80877102, 196608, 0, int(2 ** 31)];
    const body = bytes(int(40));
    const r = next();
    if (r < 0.2) return Buffer.concat([int32(0x7fffffff), int32(codes[int(codes.length)]!)]);
    if (r < 0.4) return Buffer.concat([int32(int(8)), int32(codes[int(codes.length)]!)]);
    return Buffer.concat([int32(body.length + 8), int32(codes[int(codes.length)]!), body]);
  }

  function send(parts: Buffer[], login: boolean): Promise<void> {
    const { port, password } = new URL(h.ownerUrl);
    return new Promise((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1');
      const done = (): void => {
        socket.destroy();
        resolve();
      };
      socket.setTimeout(3000, done);
      socket.on('error', done);
      socket.on('close', done);
      socket.on('connect', () => {
        if (login) {
          const params = Buffer.from('user\0sheratan\0database\0sheratan\0\0');
          socket.write(Buffer.concat([int32(params.length + 8), int32(196608), params]));
          socket.write(frame('p'.charCodeAt(0), Buffer.from(`${decodeURIComponent(password)}\0`)));
        }
        for (const p of parts) socket.write(p);
        setTimeout(done, 200);
      });
    });
  }

  test('600 connections of random frames, half after logging in: GraphQL undisturbed, new clients served', async () => {
    let stop = false;
    let worstMs = 0;
    let requests = 0;
    const failures: string[] = [];
    const traffic = (async () => {
      while (!stop) {
        const started = Date.now();
        const res = await h.graphql<{ allDocuments: { totalCount: number } }>('{ allDocuments { totalCount } }');
        worstMs = Math.max(worstMs, Date.now() - started);
        requests++;
        if (res.status !== 200 || res.body.errors) failures.push(JSON.stringify(res.body).slice(0, 200));
      }
    })();
    let frames = 0;
    for (let round = 0; round < 60; round++) {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => {
          const login = i % 2 === 0;
          const parts = Array.from({ length: 1 + int(8) }, () => (login ? randomFrame() : randomStartup()));
          frames += parts.length;
          return send(parts, login);
        }),
      );
    }
    stop = true;
    await traffic;
    process.stdout.write(`[engine fuzz] ${frames} frames on 600 connections; ${requests} GraphQL requests meanwhile, worst ${worstMs} ms\n`);
    expect(failures).toEqual([]);
    // Served throughout (the worst latency is printed above; timings belong to benchmarks).
    expect(requests).toBeGreaterThan(50);
    const fresh = new pg.Client(h.ownerUrl);
    await fresh.connect();
    expect((await fresh.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
    await fresh.end();
    expect((await fetch(`${h.url}/readyz`)).status).toBe(200);
  }, 180_000);
});

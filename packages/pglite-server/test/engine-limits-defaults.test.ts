// The embedded listener's limits at the values README documents, not
// overridden: 200 connections, 10 s to log in, 512 MiB of COPY data per
// command. (engine-protocol.test.ts tests the same mechanisms at small values,
// quickly; this file shows the defaults users get are the ones documented.)
import { rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { EmbeddedEngine } from '@sheratan/pglite-server';
import { startSupervisedEngine } from './support/supervised-engine.ts';
import { DEFAULT_CLUSTER_LIMITS } from '@sheratan/pglite-server';
import { describeEmbedded, tempDataDir } from './support/backend.ts';
import { waitFor } from './support/wait-for.ts';
import { connectRaw, errorText, startupPacket, untilClosed } from './support/wire-bytes.ts';

const MiB = 1024 * 1024;

describeEmbedded("it tests the embedded engine's own wire-protocol listener", 'the embedded listener at its documented defaults', () => {
  let dataDir: string;
  let engine: EmbeddedEngine;

  beforeAll(async () => {
    dataDir = tempDataDir();
    engine = await startSupervisedEngine(dataDir, { purpose: 'test' });
  });
  afterAll(async () => {
    await engine.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the defaults are the documented ones: 200 connections, 10 s to log in, 512 MiB of COPY data', () => {
    expect(DEFAULT_CLUSTER_LIMITS).toMatchObject({ maxConnections: 200, startupTimeoutMs: 10_000, maxCopyInBytes: 512 * MiB });
  });

  test('a connection that sends nothing is closed by the engine once 10 s have passed, not before, naming the timeout', async () => {
    // Timed from before the connect: the engine's clock starts at its accept, which cannot come earlier.
    const started = Date.now();
    const socket = await connectRaw(engine.port, engine.host);
    const closed = await untilClosed(socket);
    expect(errorText(closed.reply)).toBe('no login within 10000 ms (startup timeout)');
    // A lower bound only: load can delay the close, never bring it forward.
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_900);
  }, 60_000);

  test('200 connections are taken; the 201st is told "too many clients … 200 connections"; once they close a client logs in again', async () => {
    const sockets = await Promise.all(Array.from({ length: 200 }, () => connectRaw(engine.port, engine.host)));
    const full = 'sorry, too many clients already (the embedded engine accepts 200 connections)';
    try {
      let said = '';
      // (The engine counts a socket once its accept has run: asked until it has.)
      await waitFor(
        async () => {
          const extra = await connectRaw(engine.port, engine.host);
          const closed = untilClosed(extra);
          extra.write(startupPacket('sheratan'));
          said = errorText((await closed).reply);
          return said === full;
        },
        30_000,
        'the cap to be reached',
      );
      expect(said).toBe(full);
    } finally {
      for (const s of sockets) s.destroy();
    }
    await waitFor(
      async () => {
        const client = new pg.Client(engine.url());
        try {
          await client.connect();
          return (await client.query('select 1 as one')).rows[0].one === 1;
        } catch {
          return false;
        } finally {
          await client.end().catch(() => undefined);
        }
      },
      30_000,
      'a client to log in again',
    );
  }, 60_000);

  test('COPY FROM STDIN of 512 MiB and one row more fails naming the limit and stores nothing; the connection goes on', async () => {
    const client = new pg.Client(engine.url());
    await client.connect();
    try {
      await client.query('create table copy_default_cap (t text)');
      const row = Buffer.from(`${'x'.repeat(MiB - 1)}\n`); // one MiB per row
      const rows = function* (n: number): Generator<Buffer> {
        for (let i = 0; i < n; i++) yield row;
      };
      const result = await pipeline(Readable.from(rows(513)), client.query(copyFrom('copy copy_default_cap from stdin'))).then(
        () => 'loaded',
        (err: Error) => err.message,
      );
      expect(result).toMatch(`COPY data exceeds the embedded engine's limit of ${512 * MiB} bytes per command; split the load`);
      expect((await client.query('select count(*)::int as n from copy_default_cap')).rows).toEqual([{ n: 0 }]);
      // Within the limit a load goes through on the same connection.
      await pipeline(Readable.from(rows(8)), client.query(copyFrom('copy copy_default_cap from stdin')));
      expect((await client.query('select count(*)::int as n from copy_default_cap')).rows).toEqual([{ n: 8 }]);
    } finally {
      await client.end();
    }
  }, 180_000);
});

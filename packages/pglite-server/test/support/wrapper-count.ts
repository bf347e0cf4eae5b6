// Run by wasm-wrappers.test.ts in a process of its own, with V8's
// --trace-wasm-compilation-times: starts the engine in a worker thread of
// this process (as `npm start` does), runs enough queries for every hot
// import of PGlite's WebAssembly to pass V8's wrapper tiering budget (1,000
// calls by default), stops it, and prints "done". Whatever V8 compiled is
// on stdout, a line each.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbedded } from '@sheratan/pglite-server';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-wrappers-'));
try {
  const engine = await startEmbedded(dir, { purpose: 'wasm wrapper count' });
  const client = new pg.Client({ connectionString: engine.url() });
  await client.connect();
  for (let i = 0; i < 3000; i++) await client.query('select $1::int + 1 as x, repeat($2, 3) as s', [i, 'ab']);
  await client.end();
  await engine.stop();
  process.stdout.write('done\n');
} finally {
  rmSync(dir, { recursive: true, force: true });
}

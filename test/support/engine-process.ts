// The embedded engine alone, in its own process (tests keep WASM engines out
// of the test runner's process): `node test/support/engine-process.ts DIR PORT`
// serves DIR on PORT, prints one JSON line with the connection strings when
// ready, and stops cleanly on SIGTERM.
import { startEmbedded } from '@sheratan/pglite-server';
import { AUTHENTICATOR_ROLE } from '@sheratan/pglite-server';

const [dataDir, port] = process.argv.slice(2);
if (!dataDir || !port) throw new Error('usage: engine-process.ts DATA_DIR PORT');
const engine = await startEmbedded(dataDir, { purpose: 'test engine', port: Number(port) });
process.stdout.write(`${JSON.stringify({ ownerUrl: engine.url(), authUrl: engine.url(AUTHENTICATOR_ROLE) })}\n`);
// The engine's thread does not keep a process alive by itself.
const alive = setInterval(() => undefined, 1 << 30);
process.once('SIGTERM', () => {
  clearInterval(alive);
  engine.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});

// The embedded engine for a test of the engine itself, in a supervised child
// process (packages/pglite-server/src/supervisor.ts, as EMBEDDED_ENGINE=process runs it):
// the same listener and backend as a thread's, with PGlite's WebAssembly kept
// out of the jest worker (V8's occasional abort as that code is freed,
// nodejs/node#64500, would end the worker; in the engine's process, after its
// database is closed, it costs nothing). A crash during the test is not hidden
// by the restart: it is printed, and the engine's stop() fails naming it.
import { superviseEmbedded } from '@sheratan/pglite-server/supervisor';
import type { EmbeddedEngine, StartOptions } from '@sheratan/pglite-server';

export async function startSupervisedEngine(dataDir: string, options: StartOptions): Promise<EmbeddedEngine> {
  const crashes: string[] = [];
  const engine = await superviseEmbedded(dataDir, options, (level, msg, fields) => {
    if (level !== 'error') return;
    crashes.push(msg);
    console.error(`${msg} ${JSON.stringify(fields)}`);
  });
  return {
    ...engine,
    async stop() {
      await engine.stop();
      if (crashes.length) throw new Error(`the engine's process crashed during the test: ${crashes.join('; ')}`);
    },
  };
}

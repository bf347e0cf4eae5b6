// The embedded engine alone in a child process, for the supervisor
// (supervisor.ts, EMBEDDED_ENGINE=process): starts the engine for the data
// directory (startEmbedded: the lock, the port, the engine's thread), tells
// the parent its port over the IPC channel, and stops cleanly on SIGTERM or
// when the parent goes (the channel closes). A V8 abort here ends this process
// only; the supervisor starts another on the same port. When a stop has closed
// the database it says so ('closed') before the engine's thread is freed, where
// V8's abort has struck: after that message an abnormal end loses nothing.
import { DataDirInUseError, startEmbedded, type StartOptions } from './index.ts';

export interface EngineProcessInput {
  dataDir: string;
  options: StartOptions;
}

export type EngineProcessMessage = { type: 'ready'; port: number } | { type: 'closed' } | { type: 'error'; message: string; inUse?: boolean };

const input = JSON.parse(process.argv[2] ?? 'null') as EngineProcessInput | null;
if (!input || !process.send)
  throw new Error('engine-process.ts is started by the supervisor (packages/pglite-server/src/supervisor.ts) with its input and an IPC channel');

try {
  const engine = await startEmbedded(input.dataDir, {
    ...input.options,
    parentPid: process.ppid,
    // Resolved once the message is written to the channel: the engine's thread, whose end V8's abort may strike, is let go after it.
    onClosed: () =>
      new Promise<void>((resolve) => {
        if (!process.connected) return resolve();
        process.send!({ type: 'closed' } satisfies EngineProcessMessage, () => resolve());
      }),
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    engine.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // The parent is gone (or closed the channel): nobody is left to serve.
  process.once('disconnect', stop);
  process.send({ type: 'ready', port: engine.port } satisfies EngineProcessMessage);
} catch (err) {
  // Said to the parent first, then gone (the message is sent before the callback runs).
  process.send({ type: 'error', message: (err as Error).message, inUse: err instanceof DataDirInUseError } satisfies EngineProcessMessage, () =>
    process.exit(1),
  );
}

// Stands in for V8's abort (nodejs/node#64500) in a command's own engine
// process: loaded with `node --import` into a command, which passes its Node
// flags on to the engine process it forks (supervisor.ts); only that process
// (the one with an IPC channel to its parent) is touched. ABORT_ENGINE says when:
//  - `after-close`: right after the engine says its database is closed, as the
//    abort strikes when the engine's thread and its WebAssembly are freed;
//  - `at-stop`: as soon as it is asked to stop, before anything is closed;
//  - `thread-end`: from the engine's own thread (a worker with `pgdata` in its
//    input), as that thread ends, where V8's abort strikes: whatever the main
//    thread has not yet done is not done.
import { isMainThread, workerData } from 'node:worker_threads';

if (!isMainThread && process.env.ABORT_ENGINE === 'thread-end' && (workerData as { pgdata?: string } | null)?.pgdata) {
  process.once('exit', () => process.kill(process.pid, 'SIGABRT'));
}
if (process.send) {
  const when = process.env.ABORT_ENGINE;
  if (when === 'at-stop') process.prependOnceListener('SIGTERM', () => process.abort());
  if (when === 'after-close') {
    const send = process.send.bind(process) as (message: unknown, ...rest: unknown[]) => boolean;
    process.send = ((message: unknown, ...rest: unknown[]) => {
      const sent = send(message, ...rest);
      if ((message as { type?: string } | null)?.type === 'closed') setImmediate(() => process.abort());
      return sent;
    }) as typeof process.send;
  }
}

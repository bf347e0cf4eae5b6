// EMBEDDED_ENGINE=process: the embedded engine in a supervised child process
// (engine-process.ts) instead of a worker thread of the gateway. V8 now and
// then aborts a process whose threads compile and free PGlite's WebAssembly
// (nodejs/node#64500, "Check failed: jit_page…"; `npm run bench:engine-soak`
// measures it; wasm-flags.ts closes the one path it was caught on, no Node
// release is known to avoid it). In a thread
// that abort takes the gateway with it; in a child it ends the engine only:
// the supervisor starts another on the same port, the gateway's pools
// reconnect (requests meanwhile get DATABASE_UNAVAILABLE, /readyz 503), and
// nothing acknowledged is lost (the data directory is durable at commit).
// The price: the gateway reaches the engine through its socket listener
// rather than the in-process channel, like a server.
import { fork, type ChildProcess } from 'node:child_process';
import { DataDirInUseError, loginPasswords, makeEngine, type EmbeddedEngine, type StartOptions } from './index.ts';
import type { EngineProcessInput, EngineProcessMessage } from './engine-process.ts';

/** The first restart waits this long, doubling while restarts fail, up to MAX_RESTART_DELAY_MS. */
const FIRST_RESTART_DELAY_MS = 200;
const MAX_RESTART_DELAY_MS = 5000;
/** A clean stop that takes longer than this ends the child with SIGKILL. */
const STOP_TIMEOUT_MS = 15_000;

interface Running {
  child: ChildProcess;
  port: number;
  /** How the child ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The child said its database is closed (stop's work done): how it ends after that loses nothing. */
  closed: () => boolean;
}

/** Starts one engine process; resolves once it serves, rejects (with its stderr) if it ends first. */
function spawnEngine(dataDir: string, options: StartOptions): Promise<Running> {
  const input: EngineProcessInput = { dataDir, options };
  // The parent's Node flags (V8's among them) apply to the engine too.
  const child = fork(new URL('./engine-process.ts', import.meta.url), [JSON.stringify(input)], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    serialization: 'json',
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
    process.stderr.write(d);
  });
  // 'close', not 'exit': it comes after the IPC channel is read to its end, so a 'closed' the child wrote just
  // before an abort is seen before its end is judged.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  let closed = false;
  return new Promise((resolve, reject) => {
    child.on('message', (m: EngineProcessMessage) => {
      if (m.type === 'ready') resolve({ child, port: m.port, exited, closed: () => closed });
      else if (m.type === 'closed') closed = true;
      else reject(m.inUse ? new DataDirInUseError(m.message) : new Error(m.message));
    });
    void exited.then(({ code, signal }) =>
      reject(
        new Error(
          `the embedded engine's process ended before serving (${signal ?? `exit ${code}`})${stderr ? `: ${stderr.trim().split('\n').slice(-3).join(' ')}` : ''}`,
        ),
      ),
    );
  });
}

/**
 * Runs the engine for `dataDir` in a child process and keeps it running:
 * one that ends without being asked (a crash, a signal) is started again on
 * the same port. Fails like startEmbedded if the first start fails.
 */
/** How the supervisor reports a crash and a restart (the app's logger; the engine imports nothing above it). */
export type SupervisorLog = (level: 'info' | 'error', msg: string, fields: Record<string, unknown>) => void;

export async function superviseEmbedded(dataDir: string, options: StartOptions, log: SupervisorLog): Promise<EmbeddedEngine> {
  let running = await spawnEngine(dataDir, options);
  // Restarts take the port the first start chose (or was given), so connection strings stay valid.
  const restartOptions: StartOptions = { ...options, port: running.port };
  let stopping = false;
  let wake: (() => void) | undefined;

  const watch = async (): Promise<void> => {
    while (!stopping) {
      const ended = await running.exited;
      if (stopping) return;
      log('error', `the embedded engine's process ended (${ended.signal ?? `exit ${ended.code}`}); restarting it`, {
        pid: running.child.pid,
        port: running.port,
      });
      for (let delay = FIRST_RESTART_DELAY_MS; !stopping; delay = Math.min(delay * 2, MAX_RESTART_DELAY_MS)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, delay).unref();
        });
        if (stopping) return;
        try {
          running = await spawnEngine(dataDir, restartOptions);
          if (stopping) {
            // Stopped while this one was starting: it goes too (stop() waits for this loop).
            running.child.kill('SIGTERM');
            await running.exited;
            return;
          }
          log('info', "the embedded engine's process is serving again", { pid: running.child.pid, port: running.port });
          break;
        } catch (err) {
          log('error', "the embedded engine's process could not be restarted; trying again", { error: (err as Error).message, retryInMs: delay * 2 });
        }
      }
    }
  };
  const watching = watch();

  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      stopping = true;
      wake?.();
      const { child, exited, closed } = running;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        const ended = await exited;
        clearTimeout(timer);
        const how = ended.signal ?? `exit ${ended.code}`;
        if (ended.code !== 0 && !closed()) throw new Error(`the embedded engine's process did not stop cleanly (${how})`);
        // Its database was closed, then its thread's end took the process (V8's abort): nothing is lost.
        if (ended.code !== 0) log('info', `the embedded engine's process ended (${how}) after closing its database`, { pid: child.pid });
      }
      await watching;
    })());

  return makeEngine(options.host ?? '127.0.0.1', running.port, loginPasswords(dataDir), true, stop);
}

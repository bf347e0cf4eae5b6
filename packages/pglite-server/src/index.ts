// The embedded database as seen from the main thread: one engine per data
// directory, guarded by a lock file. The process holding the lock serves the
// engine on loopback; other commands attach to it, or start their own when
// nobody is serving.
import { MessageChannel, Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { WorkerInput, WorkerMessage } from './backend-thread.ts';
import { AUTHENTICATOR_ROLE, ENGINE_SUPERUSER, OWNER_ROLE } from './instance.ts';
import { ChannelClient } from './channel.ts';
import { channelTransport } from './channel-transport.ts';
import type { Transport } from './transport.ts';
import { avoidImportWrapperTiering } from './wasm-flags.ts';
import { processAlive, readLockFile, releaseLockFile, tryLockFile, updateLockFile, type LockHolder } from './lock-file.ts';

// The package's public face (package.json "exports": this module, `./supervisor`
// for the engine in a child process, `./backend-thread` for the soak benchmark).
export { BACKEND_BUSY_SQLSTATE, BACKEND_WAIT_SETTING } from './pg-server.ts';
export { noPrepared, type BackendMessage, type Prepared, type SessionOptions, type Transport, type TransportSession } from './transport.ts';
export { sqlStatements } from './sql-lexer.ts';
export { processAlive, releaseLockFile, tryLockFile } from './lock-file.ts';
export { AUTHENTICATOR_ROLE, ENGINE_SUPERUSER, OWNER_ROLE } from './instance.ts';
export { DEFAULT_CLUSTER_LIMITS, loginDelayMs } from './pg-cluster.ts';

export const DATABASE_NAME = 'sheratan';
export const SHADOW_DATABASE_NAME = 'sheratan_shadow';

export interface EmbeddedEngine {
  host: string;
  port: number;
  /** The owner's password. */
  password: string;
  /** The passwords the engine keeps for its logins (owner, engine superuser, authenticator). */
  passwords: Record<string, string>;
  /** True when this process runs the engine (false: attached to another process's engine). */
  owned: boolean;
  /** Connection string for `user` on the main database (or the shadow); with its password when the engine keeps it. */
  url(user?: string, shadow?: boolean): string;
  /** The in-process line to the main database (only in the process running the engine). */
  channel?: ChannelClient;
  /**
   * The gateway's face (only in the process running the engine): sessions
   * logging in as `user` over the channel (channel-transport.ts); a batch
   * that cannot have the backend within `waitMs` fails with BACKEND_BUSY.
   */
  transport?: (user: string, waitMs?: number) => Transport;
  stop(): Promise<void>;
}

interface LockInfo extends LockHolder {
  purpose: string;
  /** Set once the engine serves; removed again when it starts stopping. */
  port?: number;
  /** The holder is closing the engine: others wait for it to go, then start their own. */
  stopping?: boolean;
  /** A command's engine process: the command it serves. When that is gone the engine is going too (engine-process.ts). */
  parent?: number;
}

/** Whether the holder is on its way out: stopping, or an engine process whose command has died. */
const going = (holder: LockInfo): boolean => holder.stopping === true || (holder.parent !== undefined && !processAlive(holder.parent));

/** How long a start waits for a holder that is going before saying the data directory is in use. */
const GOING_WAIT_MS = 30_000;

export class DataDirInUseError extends Error {}

const lockPath = (dataDir: string): string => path.join(dataDir, 'engine.lock');
const portPath = (dataDir: string): string => path.join(dataDir, 'port');

/** The port the engine last listened on for `dataDir` (its connection strings stay the same across restarts). */
function rememberedPort(dataDir: string): number | undefined {
  try {
    const port = Number(readFileSync(portPath(dataDir), 'utf8').trim());
    return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
  } catch {
    return undefined;
  }
}

/** Whether something accepts connections on loopback `port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A port nothing listens on right now, on `host`. */
async function freePort(host: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A secret generated once per data directory, readable only by its owner. */
export function dataDirSecret(dataDir: string, name: string): string {
  ensureDataDir(dataDir);
  const file = path.join(dataDir, name);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    const secret = randomBytes(32).toString('hex');
    try {
      writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
      return secret;
    } catch {
      return readFileSync(file, 'utf8').trim(); // another process won the race
    }
  }
}

function ensureDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
}

const readLock = (dataDir: string): LockInfo | null => readLockFile<LockInfo>(lockPath(dataDir));

/** Takes the lock, or returns the live holder's info. */
const tryLock = (dataDir: string, purpose: string, parent?: number): LockInfo | null =>
  tryLockFile<LockInfo>(lockPath(dataDir), { pid: process.pid, purpose, ...(parent !== undefined ? { parent } : {}) });

/**
 * The logins whose passwords live in the data directory (0600): the owner's
 * (`password`, also the engine superuser's) and the authenticator's. Every
 * other role logs in with the password Postgres stores for it, if any.
 */
export function loginPasswords(dataDir: string): Record<string, string> {
  const owner = dataDirSecret(dataDir, 'password');
  return { [OWNER_ROLE]: owner, [ENGINE_SUPERUSER]: owner, [AUTHENTICATOR_ROLE]: dataDirSecret(dataDir, 'authenticator-password') };
}

export function makeEngine(
  host: string,
  port: number,
  passwords: Record<string, string>,
  owned: boolean,
  stop: () => Promise<void>,
  channel?: ChannelClient,
): EmbeddedEngine {
  return {
    host,
    port,
    password: passwords[OWNER_ROLE]!,
    passwords,
    owned,
    ...(channel ? { channel, transport: (user: string, waitMs?: number) => channelTransport(channel, user, waitMs) } : {}),
    url(user = OWNER_ROLE, shadow = false) {
      const db = shadow ? SHADOW_DATABASE_NAME : DATABASE_NAME;
      const password = passwords[user];
      const auth = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
      return `postgres://${auth}@${host}:${port}/${db}`;
    },
    stop,
  };
}

export interface StartOptions {
  /** Shown to other processes that find the data directory in use. */
  purpose: string;
  host?: string;
  /**
   * EMBEDDED_PORT; a port in use is an error. Unset: the port remembered in
   * the data directory (a new free one, remembered, if it is taken or there is
   * none yet), so connection strings stay the same across restarts.
   */
  port?: number;
  /** The listener's limits (connections, startup time, message size). */
  limits?: WorkerInput['limits'];
  /** IDLE_IN_TRANSACTION_TIMEOUT_MS. */
  idleInTransactionTimeoutMs?: number;
  /**
   * Called when stop() has closed the database cleanly (everything on disk);
   * the engine's thread is let go only once what it returns has settled:
   * engine-process.ts tells its parent and waits for the message to be
   * written, so an abort while the thread's WebAssembly is freed costs nothing.
   */
  onClosed?: () => void | Promise<void>;
  /** Set by engine-process.ts: the process the engine serves, recorded in the lock (see LockInfo.parent). */
  parentPid?: number;
}

/** Starts the engine for `dataDir` in this process; fails if another process serves it. */
export async function startEmbedded(dataDir: string, options: StartOptions): Promise<EmbeddedEngine> {
  ensureDataDir(dataDir);
  const passwords = loginPasswords(dataDir);
  let holder = tryLock(dataDir, options.purpose, options.parentPid);
  // A holder on its way out (a command's engine whose command was killed, say) is waited for.
  for (const until = Date.now() + GOING_WAIT_MS; holder && going(holder) && Date.now() < until; holder = tryLock(dataDir, options.purpose, options.parentPid)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (holder) {
    throw new DataDirInUseError(
      `the embedded database in ${dataDir} is in use by process ${holder.pid} (${holder.purpose}); stop it first, or set SHERATAN_DATA_DIR to another directory`,
    );
  }
  const host = options.host ?? '127.0.0.1';
  try {
    try {
      return await runEngine(dataDir, passwords, host, options.port ?? rememberedPort(dataDir) ?? (await freePort(host)), options);
    } catch (err) {
      // The remembered port was taken by something else meanwhile: take another (and remember it).
      if (options.port !== undefined || !/EADDRINUSE/.test(String(err))) throw err;
      return await runEngine(dataDir, passwords, host, await freePort(host), options);
    }
  } catch (err) {
    releaseLockFile(lockPath(dataDir));
    throw err;
  }
}

async function runEngine(dataDir: string, passwords: Record<string, string>, host: string, port: number, options: StartOptions): Promise<EmbeddedEngine> {
  const input: WorkerInput = {
    pgdata: path.join(dataDir, 'pgdata'),
    passwords,
    sealKey: dataDirSecret(dataDir, 'seal-key'),
    databaseName: DATABASE_NAME,
    shadowDatabaseName: SHADOW_DATABASE_NAME,
    host,
    port,
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.idleInTransactionTimeoutMs !== undefined ? { idleInTransactionTimeoutMs: options.idleInTransactionTimeoutMs } : {}),
  };
  // Before the thread compiles PGlite's WebAssembly (wasm-flags.ts: the path V8's abort was seen on).
  avoidImportWrapperTiering();
  const worker = new Worker(new URL('./backend-thread.ts', import.meta.url), { workerData: input });
  const next = (): Promise<WorkerMessage> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: WorkerMessage): void => {
        worker.off('error', onError);
        resolve(m);
      };
      const onError = (err: Error): void => {
        worker.off('message', onMessage);
        reject(err);
      };
      worker.once('message', onMessage);
      worker.once('error', onError);
    });
  let ready: WorkerMessage;
  try {
    ready = await next();
    if (ready.type !== 'ready') throw new Error(ready.type === 'error' ? ready.message : 'unexpected message from the engine');
  } catch (err) {
    await worker.terminate();
    const message = (err as Error).message;
    if (/EADDRINUSE/.test(message)) {
      throw new Error(
        `the embedded database in ${dataDir} cannot listen on ${host}:${port}: the port is in use (EADDRINUSE); free it, or set EMBEDDED_PORT to another port`,
        { cause: err },
      );
    }
    throw new Error(`the embedded database in ${dataDir} failed to start: ${message}`, { cause: err });
  }
  writeFileSync(portPath(dataDir), `${ready.port}\n`, { mode: 0o600 });
  const parent = options.parentPid !== undefined ? { parent: options.parentPid } : {};
  updateLockFile<LockInfo>(lockPath(dataDir), { pid: process.pid, purpose: options.purpose, port: ready.port, ...parent });
  const { port1, port2 } = new MessageChannel();
  worker.postMessage({ type: 'channel', port: port2 }, [port2]);
  const channel = new ChannelClient(port1);
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // First say so: a command arriving now waits for this process to go instead of attaching to a closing listener.
      updateLockFile<LockInfo>(lockPath(dataDir), { pid: process.pid, purpose: options.purpose, stopping: true, ...parent });
      const done = next();
      worker.postMessage({ type: 'stop' });
      const result = await done.catch((err: Error) => ({ type: 'error', message: err.message }) as WorkerMessage);
      if (result.type === 'stopped') await options.onClosed?.();
      channel.close();
      worker.postMessage({ type: 'release' });
      // The worker ends by itself once the engine is closed; terminate it only if it does not.
      const exited = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 5000);
        worker.once('exit', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!(await exited)) await worker.terminate();
      releaseLockFile(lockPath(dataDir));
      if (result.type === 'error') throw new Error(`the embedded database did not close cleanly: ${result.message}`);
    })());
  worker.unref();
  return makeEngine(host, ready.port, passwords, true, stop, channel);
}

/**
 * Where the engine for `dataDir` is or will be, without starting it: the
 * serving process's port, else EMBEDDED_PORT or the remembered port (a free
 * one is chosen and remembered if there is none yet). `servedBy` is the pid
 * of the process serving it, if any.
 */
export async function embeddedAddress(dataDir: string, port?: number): Promise<{ engine: EmbeddedEngine; servedBy?: number }> {
  ensureDataDir(dataDir);
  const holder = readLock(dataDir);
  const passwords = loginPasswords(dataDir);
  const noop = async (): Promise<void> => undefined;
  if (holder?.port && processAlive(holder.pid)) return { engine: makeEngine('127.0.0.1', holder.port, passwords, false, noop), servedBy: holder.pid };
  let chosen = port ?? rememberedPort(dataDir);
  if (chosen === undefined) {
    chosen = await freePort('127.0.0.1');
    writeFileSync(portPath(dataDir), `${chosen}\n`, { mode: 0o600 });
  }
  return { engine: makeEngine('127.0.0.1', chosen, passwords, false, noop) };
}

/**
 * For commands (migrate, psql, doctor…): attach to the engine another process
 * is serving for `dataDir`, or start one for the duration of the command.
 */
export async function attachOrStartEmbedded(
  dataDir: string,
  purpose: string,
  options: Pick<StartOptions, 'idleInTransactionTimeoutMs' | 'port'> = {},
  start: (dataDir: string, options: StartOptions) => Promise<EmbeddedEngine> = startEmbedded,
): Promise<EmbeddedEngine> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const holder = readLock(dataDir);
    if (holder && processAlive(holder.pid) && holder.pid !== process.pid) {
      // (A listener that refuses connections belongs to a holder that is stopping, whatever its lock says yet.)
      if (holder.port && !going(holder) && (await accepts(holder.port))) {
        return makeEngine('127.0.0.1', holder.port, loginPasswords(dataDir), false, async () => undefined);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `process ${holder.pid} (${holder.purpose}) holds ${dataDir} but has been ${holder.port || holder.stopping ? 'stopping' : 'starting'} for over 60 s`,
        );
      }
      await new Promise((r) => setTimeout(r, 100)); // starting or stopping: wait for it
      continue;
    }
    try {
      return await start(dataDir, { purpose, ...options });
    } catch (err) {
      if (!(err instanceof DataDirInUseError)) throw err; // lost a race: attach next time round
    }
  }
}

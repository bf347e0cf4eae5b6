// Worker-thread entry: runs the embedded engine off the main thread's event
// loop, so the gateway's JavaScript and Postgres's WASM use separate cores.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { PgDatabase } from './pg-server.ts';
import { DEFAULT_CLUSTER_LIMITS, PgCluster, type PgClusterLimits } from './pg-cluster.ts';
import { openInMemory, openPersistent, wipePersistent } from './instance.ts';
import { serveChannel } from './channel.ts';

export interface WorkerInput {
  /** A socket client idle in a transaction while others wait is ended after this long (default 30 s; 0: never). */
  idleInTransactionTimeoutMs?: number;
  /** Connection, startup and message limits of the listener (defaults: DEFAULT_CLUSTER_LIMITS). */
  limits?: Partial<PgClusterLimits>;
  pgdata: string;
  /** Login passwords kept in the data directory, by role (see PgClusterOptions.passwords). */
  passwords: Record<string, string>;
  /** Seals the backend while a restricted login holds it (login-boundary.ts); kept in the data directory. */
  sealKey: string;
  databaseName: string;
  shadowDatabaseName: string;
  host: string;
  port: number;
}

export type WorkerMessage = { type: 'ready'; port: number } | { type: 'stopped' } | { type: 'error'; message: string };

const input = workerData as WorkerInput;
const port = parentPort!;

const maxCopyInBytes = input.limits?.maxCopyInBytes ?? DEFAULT_CLUSTER_LIMITS.maxCopyInBytes;
const maxPendingOutputBytes = input.limits?.maxPendingOutputBytes ?? DEFAULT_CLUSTER_LIMITS.maxPendingOutputBytes;
const main = new PgDatabase({
  maxCopyInBytes,
  maxPendingOutputBytes,
  sealKey: input.sealKey,
  open: () => openPersistent(input.pgdata, input.sealKey),
  wipe: () => wipePersistent(input.pgdata),
  idleInTransactionTimeoutMs: input.idleInTransactionTimeoutMs ?? 30_000,
});
const cluster = new PgCluster({
  passwords: input.passwords,
  ...(input.limits ? { limits: input.limits } : {}),
  databases: {
    [input.databaseName]: main,
    // The shadow lives in memory: graphile-migrate rebuilds it from scratch on every commit.
    [input.shadowDatabaseName]: new PgDatabase({
      open: () => openInMemory(input.sealKey),
      sealKey: input.sealKey,
      wipe: async () => undefined,
      maxCopyInBytes,
      maxPendingOutputBytes,
    }),
  },
  aliases: { postgres: input.databaseName, template1: input.databaseName },
});

async function start(): Promise<void> {
  await main.instance(); // open (and on first use initialise) before accepting anyone
  const listening = await cluster.listen(input.port, input.host);
  port.postMessage({ type: 'ready', port: listening } satisfies WorkerMessage);
}

let channelPort: MessagePort | undefined;
port.on('message', (msg: { type: string; port?: MessagePort }) => {
  if (msg.type === 'channel' && msg.port) {
    channelPort = msg.port;
    return serveChannel(msg.port, cluster, main);
  }
  if (msg.type === 'release') {
    // Let the thread end by itself once idle, rather than being terminated
    // while V8 may still be finishing background work on the engine's WASM code.
    channelPort?.unref();
    port.unref();
    return;
  }
  if (msg.type !== 'stop') return;
  // The thread stays until the engine's owner has said the database is closed and sends 'release': freeing
  // the thread's WebAssembly is where V8's abort (nodejs/node#64500) strikes, and it must not come first.
  void cluster.close().then(
    () => port.postMessage({ type: 'stopped' } satisfies WorkerMessage),
    (err: unknown) => port.postMessage({ type: 'error', message: String(err) } satisfies WorkerMessage),
  );
});

start().catch((err: unknown) => {
  port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage);
});

// The gateway's in-process line to the embedded engine. The gateway runs in
// the thread that started the engine's worker; instead of a loopback socket
// per pooled connection it sends batches of ordinary Postgres protocol
// messages over a MessagePort, and gets the backend's replies back. Each batch
// runs in the worker without waiting on the main thread in between, so a
// pipelined `set_config … ; query ; Sync` holds the single backend only for
// as long as Postgres works on it. Sessions behave exactly like socket
// sessions (same login-role check, ownership, namespacing and state reset).
import type { MessagePort } from 'node:worker_threads';
import * as wire from './wire.ts';
import type { PgCluster } from './pg-cluster.ts';
import { BackendBusyError, type PgDatabase, type Session } from './pg-server.ts';

export interface ChannelRequest {
  id: number;
  /** The caller's session number; one batch at a time per session. */
  sid: number;
  /** The login role the session is opened as (checked like a socket login). */
  user: string;
  /** Frontend protocol messages. */
  data: Uint8Array;
  /** How long the batch may wait for the backend while another client holds it (none: as long as it takes). */
  waitMs?: number;
  /**
   * With waitMs: who decided the batch's fate, shared by the two threads
   * (CLAIM_*). The engine may be inside a statement that cannot be
   * interrupted (a socket client's pg_sleep) and read its messages only
   * later: the caller then gives up on time by itself, and whichever side
   * claims first wins, so a batch the caller gave up on never runs.
   */
  claim?: Int32Array;
}

const CLAIM_OPEN = 0;
const CLAIM_RUN = 1;
const CLAIM_ABANDONED = 2;
/** Past waitMs, how long the caller still waits for the engine to say itself that the backend stayed busy. */
const ABANDON_GRACE_MS = 250;

export interface ChannelReply {
  id: number;
  /** Backend protocol messages. */
  data?: Uint8Array;
  error?: string;
  /** The error is BACKEND_BUSY: nothing of the batch ran. */
  busy?: boolean;
}

/** Worker side: serves channel requests against `database`. */
export function serveChannel(port: MessagePort, cluster: PgCluster, database: PgDatabase): void {
  const sessions = new Map<number, { session: Promise<Session | string>; out: Uint8Array[] }>();
  port.on('message', (req: ChannelRequest) => {
    let entry = sessions.get(req.sid);
    if (!entry) {
      const out: Uint8Array[] = [];
      const output = {
        write: (data: Uint8Array) => out.push(Uint8Array.from(data)),
        end: (data?: Uint8Array) => (data ? out.push(Uint8Array.from(data)) : undefined),
        destroy: () => undefined,
      };
      entry = { session: cluster.openSession(database, req.user, output), out };
      sessions.set(req.sid, entry);
    }
    const { out } = entry;
    const reply = (r: Omit<ChannelReply, 'id'>): void => port.postMessage({ id: req.id, ...r } satisfies ChannelReply);
    void entry.session.then(async (session) => {
      if (typeof session === 'string') return reply({ error: session });
      const run = session.queue.then(async () => {
        out.length = 0;
        const [messages] = wire.splitMessages(Buffer.from(req.data));
        // Run only if the caller has not given up (see ChannelRequest.claim); then it waits for the outcome.
        const admit = (): boolean => !req.claim || Atomics.compareExchange(req.claim, 0, CLAIM_OPEN, CLAIM_RUN) !== CLAIM_ABANDONED;
        for (const m of messages) await database.handle(session, m, req.waitMs, admit);
        return Buffer.concat(out.splice(0));
      });
      session.queue = run.then(
        () => undefined,
        () => undefined,
      );
      try {
        const data = new Uint8Array(await run);
        port.postMessage({ id: req.id, data } satisfies ChannelReply, [data.buffer]);
      } catch (err) {
        if (err instanceof BackendBusyError) reply({ error: err.message, busy: true });
        else reply({ error: `embedded server: ${String(err)}` });
      }
    });
  });
}

/** Main side: sends a batch for session `sid` and resolves with the replies. */
export class ChannelClient {
  private readonly port: MessagePort;
  private nextId = 1;
  private nextSession = 1;
  private readonly pending = new Map<number, { resolve(data: Buffer): void; reject(err: Error): void }>();

  constructor(port: MessagePort) {
    this.port = port;
    port.on('message', (r: ChannelReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) this.port.unref();
      if (r.error !== undefined) p.reject(r.busy ? new BackendBusyError(r.error) : new Error(r.error));
      else p.resolve(Buffer.from(r.data!.buffer, r.data!.byteOffset, r.data!.byteLength));
    });
    port.unref(); // idle, it must not keep the process alive
  }

  /** A new session number: each is its own session in the engine, like a connection. */
  newSession(): number {
    return this.nextSession++;
  }

  send(sid: number, user: string, data: Buffer, waitMs?: number): Promise<Buffer> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.port.ref(); // a reply is due: stay alive for it
      const claim = waitMs ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
      // The engine's thread may be held by a statement it cannot interrupt: give up on time here.
      const timer =
        claim &&
        setTimeout(() => {
          if (Atomics.compareExchange(claim, 0, CLAIM_OPEN, CLAIM_ABANDONED) !== CLAIM_OPEN) return; // it runs: wait for it
          this.pending.delete(id);
          if (this.pending.size === 0) this.port.unref();
          reject(
            new BackendBusyError(
              `the embedded database's one backend stayed held by another client for ${waitMs} ms (DB_POOL_TIMEOUT_MS); nothing ran; retry shortly`,
            ),
          );
        }, waitMs! + ABANDON_GRACE_MS);
      this.pending.set(id, {
        resolve: (reply) => (clearTimeout(timer), resolve(reply)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      });
      const copy = new Uint8Array(data); // its own buffer, moved rather than cloned
      this.port.postMessage({ id, sid, user, data: copy, ...(waitMs ? { waitMs, claim } : {}) } satisfies ChannelRequest, [copy.buffer]);
    });
  }

  /** Fails whatever is still waiting (the engine stopped). */
  close(): void {
    for (const p of this.pending.values()) p.reject(new Error('the embedded database stopped'));
    this.pending.clear();
    this.port.close();
  }
}

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
}

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
        for (const m of messages) await database.handle(session, m, req.waitMs);
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
      this.pending.set(id, { resolve, reject });
      const copy = new Uint8Array(data); // its own buffer, moved rather than cloned
      this.port.postMessage({ id, sid, user, data: copy, ...(waitMs ? { waitMs } : {}) } satisfies ChannelRequest, [copy.buffer]);
    });
  }

  /** Fails whatever is still waiting (the engine stopped). */
  close(): void {
    for (const p of this.pending.values()) p.reject(new Error('the embedded database stopped'));
    this.pending.clear();
    this.port.close();
  }
}

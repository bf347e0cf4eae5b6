// LISTEN/NOTIFY on one shared backend. Postgres delivers a notification to
// the backend that listens, and here every client shares that backend, so
// without help the client running at that moment (often the sender) gets it
// and the listener never does. The engine keeps, per channel, the clients
// that listen to it, takes NotificationResponse messages
// out of whatever output they appear in, and writes each to the clients that
// listen on its channel, as a server would.
//
// Who listens is learnt from pg_listening_channels() after a client has run
// its SQL: a channel that appeared is its LISTEN, one that disappeared its
// UNLISTEN (or DISCARD ALL). One case leaves no trace there: a LISTEN on a
// channel the backend already listens to for another client. For that case
// only, the channels its LISTEN statements name (sql-lexer.ts) count too.
import * as wire from './wire.ts';

/** Whom a notification goes to: anything with a socket. */
export interface Listener {
  alive: boolean;
  socket: { write(data: Uint8Array): unknown };
}

export class NotificationRouter<L extends Listener> {
  /** The channels the backend listens to, as last read. */
  private backend = new Set<string>();
  private readonly listeners = new Map<string, Set<L>>();

  /** Whether any client listens (only then is output searched for notifications). */
  get active(): boolean {
    return this.backend.size > 0;
  }

  /**
   * `client` has just run its SQL and the backend now listens to `channels`:
   * what was added is its LISTEN, what is gone its UNLISTEN (or DISCARD).
   * `named` are the channels its LISTEN statements named (see above).
   * Returns the channels others still listen to, which the backend must
   * LISTEN to again.
   */
  update(client: L, channels: readonly string[], named: Iterable<string> = []): string[] {
    const now = new Set(channels);
    const listened = new Set(named);
    for (const c of now) {
      if (this.backend.has(c) && !listened.has(c)) continue;
      let set = this.listeners.get(c);
      if (!set) this.listeners.set(c, (set = new Set()));
      set.add(client);
    }
    const relisten: string[] = [];
    for (const c of this.backend) {
      if (now.has(c)) continue;
      const set = this.listeners.get(c);
      set?.delete(client);
      if (set?.size) relisten.push(c);
      else this.listeners.delete(c);
    }
    for (const c of relisten) now.add(c);
    this.backend = now;
    return relisten;
  }

  /** `client` is gone; returns the channels nobody listens to any more (to UNLISTEN). */
  forget(client: L): string[] {
    const unlisten: string[] = [];
    for (const [c, set] of this.listeners) {
      if (!set.delete(client) || set.size) continue;
      this.listeners.delete(c);
      this.backend.delete(c);
      unlisten.push(c);
    }
    return unlisten;
  }

  /** Delivers a NotificationResponse to the clients listening on its channel. */
  deliver(msg: Buffer): void {
    const channel = wire.readCString(msg, 9)[0]; // type, length, sender's pid, then the channel
    for (const l of this.listeners.get(channel) ?? []) if (l.alive) l.socket.write(msg);
  }

  reset(): void {
    this.backend.clear();
    this.listeners.clear();
  }
}

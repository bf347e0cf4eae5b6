// One embedded database: a PGlite instance shared by many client sessions.
//
// PGlite is a single backend; this server lets many ordinary clients (pg, psql,
// graphile-migrate, the gateway's pool) share it as if each had its own
// connection:
//  - a client owns the backend from the first message of a unit (a simple
//    Query, or extended-protocol messages up to Sync) until the unit ends
//    outside a transaction, so transactions and pipelines never interleave;
//  - prepared statement names are namespaced per client (portals end with their client's hold on the backend, see wire.namespaceMessage);
//  - session state (settings, role) is saved when the backend passes to
//    another client and restored when it comes back, and a client sees none
//    of another's: each starts as its login role (the session user, as on a
//    server) with default settings;
import type { PGlite } from '@electric-sql/pglite';
import * as wire from './wire.ts';
import { copyFromStdin, copyInResponse } from './copy-in.ts';
import { NotificationRouter } from './notifications.ts';
import { sqlStatements } from './sql-lexer.ts';
import { seal, unseal } from './login-boundary.ts';
import { WaitQueue } from '@sheratan/wait-queue';

export interface PgDatabaseOptions {
  /**
   * A socket client that holds the backend idle inside a transaction for this
   * long while others wait is ended, as idle_in_transaction_session_timeout
   * ends it on a server (0: never).
   */
  idleInTransactionTimeoutMs?: number;
  /** The most COPY … FROM STDIN data one command may send (it is held in memory until CopyDone). */
  maxCopyInBytes: number;
  /**
   * The most output waiting for one socket client (PgClusterLimits): past it
   * the rest of the reply is dropped and the connection ended; past a
   * sixteenth of it the client's next message waits until it has read.
   */
  maxPendingOutputBytes?: number;
  /** The key that seals and unseals the backend for restricted logins (login-boundary.ts). */
  sealKey: string;
  /** Opens the instance; called lazily and again after a wipe. */
  open(): Promise<PGlite>;
  /** Deletes persisted data so that the next open() starts empty. */
  wipe(): Promise<void>;
}

/**
 * The SQLSTATE of a message that could not have the backend in time (nothing
 * of it ran): class SB, implementation-defined ("Sheratan, backend"). The
 * gateway answers it 503 DATABASE_BUSY (plugins/error-mask.ts, which names it
 * too: the plugins import nothing of the engine).
 */
export const BACKEND_BUSY_SQLSTATE = 'SB000';

/**
 * The startup setting (`options=-c sheratan.backend_wait_ms=N`) that bounds a
 * socket session's wait for the one backend, as the channel's `waitMs` does
 * the gateway's: past it, the message fails with BACKEND_BUSY_SQLSTATE having
 * run nothing. The gateway sets it to DB_POOL_TIMEOUT_MS when it reaches the
 * engine over the socket (EMBEDDED_ENGINE=process).
 */
export const BACKEND_WAIT_SETTING = 'sheratan.backend_wait_ms';

/** A message that could not have the backend in time (nothing of it ran). */
export class BackendBusyError extends Error {
  readonly code = BACKEND_BUSY_SQLSTATE;
}

/** Where a session's replies go: a client socket, or the gateway's in-process channel. */
export interface SessionOutput {
  /** Bytes written and not yet sent (a socket's; the in-process channel has none). */
  readonly writableLength?: number;
  once?(event: 'drain' | 'close', listener: () => void): unknown;
  off?(event: 'drain' | 'close', listener: () => void): unknown;
  write(data: Uint8Array): unknown;
  end(data: Uint8Array): unknown;
  end(): unknown;
  destroy(): unknown;
}

export interface Session {
  id: number;
  /** Runs a database-level command (DROP/CREATE DATABASE…, SHERATAN DUMP); returns the reply messages. */
  databaseCommand(sql: string): Promise<Buffer>;
  socket: SessionOutput;
  user: string;
  alive: boolean;
  /** Something this client ran may have changed session-level state. */
  dirty: boolean;
  /**
   * Its SQL is not the gateway's own (a socket client): its session state is
   * read back from Postgres at every hand-over, whatever it ran, instead of
   * guessing from the SQL text what it might have changed.
   */
  untrusted?: boolean;
  /**
   * A socket login that is not a superuser: while it holds the backend the
   * bootstrap role is sealed (login-boundary.ts), so Postgres refuses it every
   * other role, and its connection is ended if its session user changes.
   */
  restricted?: boolean;
  /** Session-level settings captured when the backend last passed to another client. */
  saved: Array<[string, string]>;
  /**
   * A socket session's reset values by lower-case name: what its login set
   * (ALTER ROLE / DATABASE … SET, then the settings it sent at connection
   * time), which RESET, SET … TO DEFAULT, RESET ALL and DISCARD ALL return
   * to on a server (see keepResetValues). Absent when there are none.
   */
  resetValues?: Map<string, [string, string]>;
  /** Channels its LISTEN statements named since its listening was last read (see notifications.ts). */
  listenNamed?: Set<string>;
  /** Its SQL-level PREPAREd statements (name, the PREPARE to recreate it), kept off the backend while others hold it. */
  savedPrepared?: Array<[string, string]>;
  role: string;
  statements: Set<string>;
  /** The Parse message (names namespaced) of each of its named statements, to recreate one set aside. */
  parses?: Map<string, Buffer>;
  /** Its statements taken off the backend while a socket client held it (see setAsideOthers). */
  aside?: Set<string>;
  /** Its statements and portals (its own names) that are COPY … FROM STDIN. */
  copyStatements?: Set<string>;
  copyPortals?: Set<string>;
  /** A COPY FROM STDIN being collected: the command, then the data so far. */
  copyIn?: { command: Buffer; data: Buffer[]; bytes: number };
  /** Checked, in its current idle spell, for graphile-migrate watch's lock (see watchIdleOwner). */
  watchProbed?: boolean;
  /** It has WITH HOLD cursors open (outside a transaction): it keeps the backend until it closes them. */
  holdsCursors?: boolean;
  /** The transaction status of its last ReadyForQuery. */
  txStatus?: 'I' | 'T' | 'E';
  /** A socket session's bound on waiting for the backend (BACKEND_WAIT_SETTING), in ms. */
  backendWaitMs?: number;
  /** A message of its extended-protocol unit was refused as busy: the rest of the unit is dropped up to Sync, as Postgres does after an error. */
  discardingUntilSync?: boolean;
  queue: Promise<void>;
  /** The type of the last message handled (for tracing). */
  last?: string;
  /** Where the message being handled is, and since when (for tracing). */
  stage?: string;
  stageSince?: number;
  /** Messages received but not yet handled, and since when (for tracing). */
  pending?: number;
  queuedSince?: number;
}

// Statements that can leave session-level state behind. `SET LOCAL` and
// `set_config(…, true)` are transaction-local and need no bookkeeping.
const SESSION_STATE_SQL = [
  /(^|;)\s*set\s+(?!local\b)/i,
  /(^|;)\s*(reset|discard|listen|unlisten|prepare|deallocate|load)\b/i,
  /set_config\s*\([^)]*,\s*false\s*\)/i,
];

/**
 * A query that is one `DEALLOCATE [PREPARE] name` of a statement the session
 * prepared at the protocol level names it as the backend knows it (with the
 * session's prefix, see wire.namespaceMessage): on a server the two share one
 * namespace, and drivers free their protocol-level statements this way
 * (psqlODBC: DEALLOCATE "_PLAN0x…"; it parses the same name again after).
 */
function ownStatementName(s: Session, raw: Buffer, sql: string): Buffer {
  const statements = sqlStatements(sql);
  const words = statements.length === 1 ? statements[0]!.words : [];
  if (words[0] !== 'deallocate' || !(words.length === 2 || (words.length === 3 && words[1] === 'prepare'))) return raw;
  const word = words.at(-1)!;
  const name = `s${s.id}_${word.startsWith('"') ? word.slice(1) : word}`;
  if (!s.statements.has(name)) return raw;
  s.statements.delete(name);
  s.parses?.delete(name);
  return wire.message('Q', Buffer.from(`deallocate ${quoteIdent(name)}\0`, 'utf8'));
}

/** How long an owner idle in a transaction may make others wait before the engine checks for graphile-migrate's watch lock. */
const GRAPHILE_WATCH_PROBE_MS = 1000;

const TRACE = process.env.SHERATAN_ENGINE_TRACE === '1';

/** Tracing: where a session's current message is, and since when. */
const mark = (s: Session, stage: string): void => {
  if (!TRACE) return;
  s.stage = stage;
  s.stageSince = Date.now();
};

/** Tracing: a message has arrived for `s` and waits its turn. */
export function noteQueued(s: Session): void {
  if (!TRACE) return;
  if (!s.pending) s.queuedSince = Date.now();
  s.pending = (s.pending ?? 0) + 1;
}

/** `SHERATAN DUMP`: a plain SQL dump of the database (superusers only), for `npm run backup`. */
export const DUMP_COMMAND = /^\s*sheratan\s+dump\s*;?\s*$/i;

export const DATABASE_COMMAND = /^\s*(drop|create|alter)\s+database\b|^\s*(grant|revoke)\b[\s\S]*\bon\s+database\b/i;

const sameSettings = (a: Array<[string, string]>, b: Array<[string, string]>): boolean =>
  a.length === b.length && a.every(([k, v], i) => b[i]![0] === k && b[i]![1] === v);

/**
 * The PREPARE that created statement `name`, from pg_prepared_statements'
 * `statement` (the whole query string it came in, which may hold other
 * statements too: only the PREPARE itself is run again).
 */
function preparingStatement(name: string, source: string): string {
  const prepares = sqlStatements(source).filter((st) => st.words[0] === 'prepare');
  const own = prepares.length === 1 ? prepares[0] : prepares.find((st) => st.words[1] === name || st.words[1] === `"${name}`);
  return own?.text ?? `select 1 where false`;
}

const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/**
 * The rows (first column, text) of `sql` run at once, in one synchronous
 * protocol call between a client's messages: it must be a query that cannot
 * fail, so that whatever the client's transaction holds is left as it was.
 */
function rowsNow(db: PGlite, sql: string): string[] {
  const reply: Buffer[] = [];
  // (Without the file sync, execProtocolRawStream does all its work before it returns.)
  void db.execProtocolRawStream(new Uint8Array(wire.message('Q', Buffer.from(`${sql}\0`))), {
    syncToFs: false,
    onRawData: (data: Uint8Array) => reply.push(Buffer.from(data)),
  });
  const [messages] = wire.splitMessages(Buffer.concat(reply));
  return messages
    .filter((m) => m[0] === 0x44) // DataRow: count, then length and value of the first column
    .map((m) => (m.readInt32BE(7) < 0 ? '' : m.toString('utf8', 11, 11 + m.readInt32BE(7))));
}
const quoteLiteral = (s: string): string => `'${s.replace(/'/g, "''")}'`;
/** A literal read the same whatever the session made standard_conforming_strings (a client's state is live when it is used). */
const escapeLiteral = (s: string): string => `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/** One database: a PGlite instance shared by the sessions connected to it. */
export class PgDatabase {
  private readonly options: PgDatabaseOptions;
  private db: PGlite | null = null;
  private opening: Promise<PGlite> | null = null;
  readonly sessions = new Set<Session>();
  private owner: Session | null = null;
  private readonly waiters = new WaitQueue();
  /** Whose session state the backend currently holds. */
  private applied: Session | null = null;
  /** The bootstrap role is sealed (a restricted login is applied). */
  private sealed = false;
  /** Who listens to which channel (see notifications.ts). */
  private readonly notifications = new NotificationRouter<Session>();
  serverVersion = '';

  constructor(options: PgDatabaseOptions) {
    this.options = options;
    if (TRACE) setInterval(() => this.reportStuck(), 5000).unref();
  }

  /** Tracing: names every session whose message has been in one stage for over 10 s. */
  private reportStuck(): void {
    const now = Date.now();
    for (const s of this.sessions) {
      const stuck = s.stage && s.stage !== 'done' && now - (s.stageSince ?? now) > 10_000;
      const waiting = (s.pending ?? 0) > 0 && now - (s.queuedSince ?? now) > 10_000;
      if (stuck || waiting) {
        process.stderr.write(
          `[engine] session ${s.id} (user ${s.user}, alive ${s.alive}): stage '${s.stage}' for ${now - (s.stageSince ?? now)} ms on message ${s.last}, ` +
            `${s.pending ?? 0} queued for ${now - (s.queuedSince ?? now)} ms; ` +
            `owner ${this.owner?.id ?? 'none'}, applied ${this.applied?.id ?? 'none'}, ${this.waiters.length} waiting, in transaction ${this.db?.isInTransaction()}\n`,
        );
      }
    }
  }

  /** The instance, opened on first use (the shadow database is only paid for when used). */
  async instance(): Promise<PGlite> {
    if (this.db) return this.db;
    this.opening ??= this.options.open().then(async (db) => {
      const rows = await db.query<{ server_version: string }>('show server_version');
      this.serverVersion = rows.rows[0]!.server_version;
      this.db = db;
      this.opening = null;
      return db;
    });
    return this.opening;
  }

  /** Runs `fn` with exclusive use of the backend, as the superuser with default settings. */
  async exclusive<T>(fn: (db: PGlite) => Promise<T>, waitMs?: number): Promise<T> {
    const me = { id: 0, backendWaitMs: waitMs } as Session;
    await this.acquire(me, waitMs);
    try {
      const db = await this.instance();
      if (this.applied) await this.leave(db);
      return await fn(db);
    } finally {
      this.release(me);
    }
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.socket.destroy();
    await this.exclusive(async () => undefined).catch(() => undefined);
    if (this.db) await this.db.close();
    this.db = null;
  }

  /** Drops everything: the instance is closed, its data deleted, and a fresh one opened. */
  async wipe(): Promise<void> {
    await this.exclusive(async (db) => {
      await db.close();
      this.db = null;
      this.applied = null;
      this.notifications.reset();
      for (const other of this.sessions) {
        other.statements.clear();
        other.parses?.clear();
        other.aside?.clear();
      }
      await this.options.wipe();
    });
    await this.instance();
  }

  addSession(session: Session): void {
    this.sessions.add(session);
  }

  // ---- backend ownership -------------------------------------------------

  /** Waits for the backend; past `waitMs` (if given) fails with BackendBusyError, having changed nothing. */
  private async acquire(s: Session, waitMs?: number): Promise<void> {
    const deadline = waitMs ? Date.now() + waitMs : Infinity;
    while (this.owner !== null && this.owner !== s) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const bound = s.backendWaitMs ? `${BACKEND_WAIT_SETTING}, the gateway's DB_POOL_TIMEOUT_MS` : 'DB_POOL_TIMEOUT_MS';
        throw new BackendBusyError(
          `the embedded database's one backend stayed held by another client (${this.owner.user}, session ${this.owner.id}) for ${waitMs} ms (${bound}); nothing ran; retry shortly`,
        );
      }
      const turn = this.waiters.wait(remaining);
      this.watchIdleOwner();
      // Woken: the backend was released; another client may have taken it first, so the loop looks again.
      await turn;
    }
    this.owner = s;
    this.ownerIdleSince = null;
    s.watchProbed = false;
  }

  private release(s: Session): void {
    if (this.owner !== s) return;
    this.owner = null;
    this.ownerIdleSince = null;
    this.waiters.wakeNext();
  }

  /** Since when the owner has held the backend with nothing to do (inside a transaction), or null. */
  private ownerIdleSince: number | null = null;
  private idleTimer: NodeJS.Timeout | null = null;

  /**
   * While clients wait for the backend, the one holding it idle inside a
   * transaction for longer than idleInTransactionTimeoutMs is ended with
   * SQLSTATE 25P03, as a server would; its transaction rolls back when its
   * connection goes (disconnect). The gateway's own channel never idles in a
   * transaction (each transaction is one batch), so only socket clients are.
   */
  private watchIdleOwner(): void {
    const limit = this.options.idleInTransactionTimeoutMs ?? 0;
    if (this.idleTimer) return;
    const check = (): void => {
      this.idleTimer = null;
      const owner = this.owner;
      if (!owner || this.waiters.length === 0) return;
      const since = this.ownerIdleSince;
      const idle = since === null ? 0 : Date.now() - since;
      if (owner.untrusted && since !== null && idle >= GRAPHILE_WATCH_PROBE_MS && !owner.watchProbed) {
        owner.watchProbed = true;
        if (this.holdsGraphileMigrateWatchLock()) {
          return this.end(
            owner,
            '55P03',
            'graphile-migrate watch cannot run on the embedded engine: it keeps graphile_migrate.current locked in a transaction on one connection while it runs current.sql on another, and the engine has one backend, so the second would wait forever; use `npm run db:watch`, which does the same steps on one connection',
          );
        }
      }
      if (limit && owner.untrusted && since !== null && idle >= limit) {
        return this.end(
          owner,
          '25P03',
          `terminating connection due to idle-in-transaction timeout: it held the embedded engine's one backend idle ${owner.holdsCursors ? 'with WITH HOLD cursors open' : 'inside a transaction'} for ${limit} ms while other clients waited (IDLE_IN_TRANSACTION_TIMEOUT_MS)`,
        );
      }
      const probeIn = owner.untrusted && !owner.watchProbed ? GRAPHILE_WATCH_PROBE_MS - idle : Infinity;
      const next = Math.min(limit ? limit - idle : Infinity, probeIn);
      if (!Number.isFinite(next)) return;
      this.idleTimer = setTimeout(check, Math.max(10, next));
      this.idleTimer.unref();
    };
    check();
  }

  /**
   * After a socket client's unit of work, outside a transaction: whether it
   * may keep going. A restricted login whose session user is no longer its
   * login (it can only have become the sealed bootstrap role) is ended, the
   * backend staying its own until its disconnect resets it; and a client
   * holding WITH HOLD cursors keeps the backend (marked in holdsCursors), as
   * inside a transaction, since cursors cannot be set aside and another
   * client could FETCH from them.
   */
  private keepsBackend(db: PGlite, s: Session): boolean {
    const [who = '', cursors = '0'] = rowsNow(db, 'select session_user::text union all select count(*)::text from pg_cursors where is_holdable');
    if (s.restricted && who !== s.user) {
      this.end(
        s,
        '42501',
        `the login "${s.user}" made "${who}" its session user; on the embedded engine a login cannot become another role, and its connection is ended`,
      );
      return false;
    }
    s.holdsCursors = cursors !== '0';
    return true;
  }

  /**
   * After each unit of work of a session with reset values, before the
   * backend can pass to anyone else or the session's next message runs: the
   * engine applied them with set_config (source 'session' in pg_settings),
   * so a setting whose source is no longer 'session' was returned to the
   * engine's default by the client (RESET, SET … TO DEFAULT, RESET ALL,
   * DISCARD ALL, or a transaction that did so committing), where a server
   * returns it to the reset value: it is set again, as the session's own
   * value, so a later SET still wins and hand-overs keep it (leave saves it).
   * Inside a transaction it is set transactionally, so a ROLLBACK of the
   * RESET also rolls this back, to what the setting was before, as on a
   * server. Read from Postgres whatever SQL ran. Limits: statements after a
   * RESET in the same message see the default until the message ends, and
   * custom (dotted) settings, which pg_settings does not list, are not reset
   * to their start-up values (they are kept across hand-overs: see leave).
   */
  private keepResetValues(db: PGlite, s: Session): void {
    const values = s.resetValues!;
    const names = [...values.keys()].map(escapeLiteral).join(', ');
    const reset = rowsNow(db, `select name from pg_settings where source <> 'session' and lower(name) in (${names})`);
    if (reset.length === 0) return;
    // Each in its own block: one the current role may no longer set (after
    // SET ROLE) stays as the client left it rather than failing the
    // client's transaction.
    const body = reset
      .map((name) => values.get(name.toLowerCase()))
      .filter((v) => v !== undefined)
      .map(([name, value]) => `begin perform set_config(${escapeLiteral(name)}, ${escapeLiteral(value)}, false); exception when others then null; end;`)
      .join(' ');
    rowsNow(db, `do ${escapeLiteral(`begin ${body} end`)}`);
  }

  /**
   * Waits while more than a sixteenth of maxPendingOutputBytes is waiting to
   * be sent to `s` (it is not reading): only `s` stalls, holding nothing
   * (inside a transaction, the idle-in-transaction timeout still applies).
   */
  private async caughtUp(s: Session): Promise<void> {
    const high = (this.options.maxPendingOutputBytes ?? Infinity) / 16;
    const out = s.socket;
    while (s.alive && (out.writableLength ?? 0) > high && out.once && out.off) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          out.off!('drain', done);
          out.off!('close', done);
          resolve();
        };
        out.once!('drain', done);
        out.once!('close', done);
      });
    }
  }

  /** Ends `s`'s connection with a FATAL error; its transaction rolls back as it disconnects. */
  private end(s: Session, code: string, text: string): void {
    // Nothing more of it runs, whatever it had already sent.
    s.alive = false;
    s.socket.end(wire.errorResponse('FATAL', code, text));
    s.socket.destroy();
  }

  /**
   * Whether the idle owner's open transaction holds graphile_migrate.current
   * locked EXCLUSIVE, as graphile-migrate's watch does before it runs
   * current.sql on a second connection. Read from pg_locks (every lock of the
   * one backend's open transaction is the owner's), in one synchronous
   * protocol call between the owner's own messages; the query cannot fail,
   * so the owner's transaction is left as it was.
   */
  private holdsGraphileMigrateWatchLock(): boolean {
    const db = this.db;
    if (!db || !db.isInTransaction()) return false;
    const sql =
      "select 1 from pg_locks where locktype = 'relation' and relation = to_regclass('graphile_migrate.current') and mode = 'ExclusiveLock' and granted";
    return rowsNow(db, sql).length > 0;
  }

  /** Saves the applied client's session state (if it may have changed) and resets the backend. */
  private async leave(db: PGlite): Promise<void> {
    const prev = this.applied;
    if (prev?.dirty) {
      // Read from Postgres, whatever SQL changed it: settings, role, and the
      // statements PREPAREd in SQL (those are not namespaced like protocol-level
      // ones, so they leave the backend with their client and come back with it).
      // Custom (dotted) settings are not in pg_settings: those the session sent
      // at connection time are read by name, so that they survive hand-overs.
      const custom = [...(prev.resetValues?.values() ?? [])].map(([name]) => name).filter((name) => name.includes('.'));
      const res = await db.query<{ kind: string; name: string; value: string }>(
        `select 'setting' as kind, name, setting as value from pg_settings where source = 'session'
         union all select 'setting', n, current_setting(n, true) from unnest($1::text[]) n where current_setting(n, true) is not null
         union all select 'role', 'role', current_setting('role')
         union all select 'prepared', name, statement from pg_prepared_statements where from_sql
         union all select 'listen', c, '' from pg_listening_channels() c`,
        [custom],
      );
      await this.relisten(
        db,
        prev,
        res.rows.filter((r) => r.kind === 'listen').map((r) => r.name),
      );
      const settings = res.rows.filter((r) => r.kind === 'setting' && r.name !== 'session_authorization');
      prev.saved = settings.map((r) => [r.name, r.value]);
      const role = res.rows.find((r) => r.kind === 'role')?.value;
      prev.role = role && role !== 'none' ? role : prev.user;
      const prepared = res.rows.filter((r) => r.kind === 'prepared');
      prev.savedPrepared = prepared.map((r) => [r.name, preparingStatement(r.name, r.value)]);
      for (const r of prepared) await db.exec(`deallocate ${quoteIdent(r.name)}`);
      prev.dirty = false;
    }
    // (PGlite ignores RESET SESSION AUTHORIZATION: name the engine's superuser.)
    if (!this.sealed) await db.exec('reset all; reset role; set session authorization postgres');
    else {
      await db.exec('reset all; reset role');
      // Before the engine is its bootstrap role again, which must be a superuser then.
      await unseal(db, this.options.sealKey);
      this.sealed = false;
      await db.exec('set session authorization postgres');
    }
    this.applied = null;
  }

  /** `s` ran SQL and the backend listens to `channels` now: record its LISTENs and UNLISTENs, keep others' channels. */
  private async relisten(db: PGlite, s: Session, channels: string[]): Promise<void> {
    const named = s.listenNamed ?? [];
    s.listenNamed = undefined;
    for (const c of this.notifications.update(s, channels, named)) await db.exec(`listen ${quoteIdent(c)}`);
  }

  private async switchTo(db: PGlite, s: Session): Promise<void> {
    const prev = this.applied;
    if (prev === s) return;
    // Hand-over between clients in the same session state (same role, same
    // saved settings, e.g. the connections of one pool) costs nothing.
    const trivial =
      prev !== null &&
      !prev.dirty &&
      !this.sealed &&
      !s.restricted &&
      prev.user === s.user &&
      prev.role === s.role &&
      sameSettings(prev.saved, s.saved) &&
      !s.savedPrepared?.length;
    if (!trivial) {
      await this.leave(db);
      // The login becomes the session user, as on a server: session_user names
      // it, `reset role` returns to it, and SET ROLE is checked against its
      // memberships by Postgres itself.
      if (s.user !== 'postgres') await db.exec(`set session authorization ${quoteIdent(s.user)}`);
      // From here the backend is in its state, whatever fails next (leave() undoes it).
      this.applied = s;
      if (s.restricted) {
        // Its login is the session user now; from here Postgres refuses it any other (login-boundary.ts).
        this.sealed = true;
        await seal(db, this.options.sealKey);
      }
      const sql = [
        s.role === s.user ? '' : `set role ${quoteIdent(s.role)};`,
        ...s.saved.map(([k, v]) => `select set_config(${quoteLiteral(k)}, ${quoteLiteral(v)}, false);`),
      ].join('');
      if (sql) await db.exec(sql);
      for (const [, prepare] of s.savedPrepared ?? []) {
        // Recreated as its client made it; one that cannot be (its objects gone) is simply absent, as after a DEALLOCATE.
        await db.exec(prepare).catch(() => undefined);
      }
      s.savedPrepared = undefined;
    }
    this.applied = s;
    if (s.untrusted) await this.setAsideOthers(db, s);
    if (s.aside?.size) await this.restoreAside(db, s);
  }

  /**
   * A socket client finds on the backend its own protocol-level prepared
   * statements only: everyone else's are deallocated (and recreated when
   * their client is back, restoreAside), so pg_prepared_statements shows it
   * no other client's statement text, the gateway's included, and its
   * DEALLOCATE (ALL) reaches no one else's.
   */
  private async setAsideOthers(db: PGlite, s: Session): Promise<void> {
    const mine = `s${s.id}_`;
    const others = (await db.query<{ name: string }>('select name from pg_prepared_statements where not from_sql')).rows.filter(
      (r) => !r.name.startsWith(mine),
    );
    if (others.length === 0) return;
    const byPrefix = new Map([...this.sessions].map((o) => [`s${o.id}_`, o]));
    for (const { name } of others) {
      const owner = byPrefix.get(/^s\d+_/.exec(name)?.[0] ?? '');
      if (owner?.parses?.has(name)) (owner.aside ??= new Set()).add(name);
    }
    await db.exec(others.map((r) => `deallocate ${quoteIdent(r.name)};`).join(''));
  }

  /** Recreates `s`'s statements set aside (one that no longer parses is absent, as after a DEALLOCATE). */
  private async restoreAside(db: PGlite, s: Session): Promise<void> {
    const parses = [...s.aside!].flatMap((name) => s.parses?.get(name) ?? []);
    s.aside!.clear();
    // Each with its own Sync: an error ends at it, outside any transaction (the backend is between units here).
    for (const parse of parses) await db.execProtocolRaw(new Uint8Array(Buffer.concat([parse, wire.message('S')])));
  }

  /**
   * COPY … FROM STDIN, collected before it runs (see copy-in.ts). Returns the
   * whole unit to run — the command followed by its data and its end — once
   * the client has sent it, or null while the message was taken here.
   */
  private collectCopyIn(s: Session, type: string, raw: Buffer): Buffer[] | null | undefined {
    const copy = s.copyIn;
    if (copy) {
      if (type === 'd') {
        copy.bytes += raw.length;
        const limit = this.options.maxCopyInBytes;
        if (copy.bytes <= limit) {
          copy.data.push(raw);
          if (this.owner === s) this.ownerIdleSince = null; // busy sending, not idle
          return null;
        }
        // Too much to hold: the command runs with a CopyFail, so the client
        // gets the server's own error (and its transaction is aborted, as on a
        // server); the rest of its data is ignored like any stray CopyData.
        s.copyIn = undefined;
        const reason = `COPY data exceeds the embedded engine's limit of ${limit} bytes per command; split the load into several COPY commands`;
        return [copy.command, wire.message('f', Buffer.from(`${reason}\0`))];
      }
      if (type === 'H' || type === 'S') {
        // A server ignores Flush and Sync during COPY IN; they stay in order.
        copy.data.push(raw);
        return null;
      }
      // CopyDone, CopyFail, or anything else (which fails the COPY on the backend, as on a server).
      s.copyIn = undefined;
      return [copy.command, ...copy.data, raw];
    }
    // Outside COPY a server ignores CopyData, CopyDone and CopyFail (left over from a failed COPY).
    if (type === 'd' || type === 'c' || type === 'f') return null;
    const body = raw.subarray(5);
    let plan: ReturnType<typeof copyFromStdin> | undefined;
    if (type === 'Q') {
      plan = copyFromStdin(wire.readCString(body, 0)[0]);
    } else if (type === 'P' || type === 'B') {
      const [name, after] = wire.readCString(body, 0);
      if (type === 'P') {
        s.copyStatements ??= new Set();
        if (copyFromStdin(wire.readCString(body, after)[0]).count > 0) s.copyStatements.add(name);
        else s.copyStatements.delete(name);
      } else {
        s.copyPortals ??= new Set();
        if (s.copyStatements?.has(wire.readCString(body, after)[0])) s.copyPortals.add(name);
        else s.copyPortals.delete(name);
      }
      return undefined;
    } else if (type === 'E' && s.copyPortals?.has(wire.readCString(body, 0)[0])) {
      plan = { count: 1, binary: false };
    }
    if (!plan || plan.count === 0) return undefined;
    if (plan.count > 1) {
      s.socket.write(
        Buffer.concat([
          wire.errorResponse('ERROR', '0A000', 'the embedded engine runs one COPY … FROM STDIN per query message; send each COPY as its own query'),
          wire.readyForQuery(s.txStatus ?? 'I'),
        ]),
      );
      return null;
    }
    s.copyIn = { command: raw, data: [], bytes: 0 };
    s.socket.write(copyInResponse(plan.binary));
    return null;
  }

  /**
   * Handles one frontend message of `s`; `waitMs` bounds the wait for the
   * backend (see acquire); `admit`, asked once the backend is `s`'s, says
   * whether its caller still wants the work done (channel.ts), else nothing runs.
   */
  async handle(s: Session, raw: Buffer, waitMs?: number, admit?: () => boolean): Promise<void> {
    if (TRACE) s.pending = Math.max(0, (s.pending ?? 1) - 1);
    const type = String.fromCharCode(raw[0]!);
    if (type === 'X') {
      s.copyIn = undefined;
      s.socket.end();
      return;
    }
    const copyUnit = this.collectCopyIn(s, type, raw);
    if (copyUnit === null) return;
    if (copyUnit) raw = copyUnit[0]!;
    mark(s, 'drain');
    await this.caughtUp(s);
    if (!s.alive) return;
    mark(s, 'acquire');
    const held = this.owner === s;
    await this.acquire(s, waitMs);
    if (admit && !admit()) {
      if (!held) this.release(s);
      throw new BackendBusyError(`the caller stopped waiting for the embedded database's one backend after ${waitMs} ms (DB_POOL_TIMEOUT_MS); nothing ran`);
    }
    s.last = type;
    try {
      mark(s, 'open');
      const db = await this.instance();
      mark(s, 'switch');
      await this.switchTo(db, s);
      const sql = wire.sqlText(raw);
      if (type === 'Q' && sql !== undefined && (DATABASE_COMMAND.test(sql) || DUMP_COMMAND.test(sql))) {
        mark(s, 'database command');
        const inTransaction = s.txStatus === 'T' || s.txStatus === 'E';
        if (inTransaction) {
          // Answered here, the backend kept: handing it to another client now would end this client's open
          // transaction. GRANT/REVOKE … ON DATABASE and ALTER DATABASE are transactional on a server; DROP and
          // CREATE DATABASE (and a dump) cannot run in a transaction block there either.
          const verb = /^\s*(\w+\s+\w+)/.exec(sql)![1]!.toUpperCase();
          const reply = /^(DROP|CREATE) DATABASE|^SHERATAN DUMP/.test(verb)
            ? wire.errorResponse('ERROR', '25001', `${verb} cannot run inside a transaction block`)
            : await s.databaseCommand(sql); // an acknowledgement (or a refusal) that needs no backend
          s.socket.write(Buffer.concat([reply, wire.readyForQuery(s.txStatus!)]));
          mark(s, 'done');
          return;
        }
        this.release(s);
        s.socket.write(Buffer.concat([await s.databaseCommand(sql), wire.readyForQuery('I')]));
        mark(s, 'done');
        return;
      }
      if (s.untrusted || (sql !== undefined && SESSION_STATE_SQL.some((re) => re.test(sql)))) s.dirty = true;
      if (type === 'Q' && sql !== undefined) raw = ownStatementName(s, raw, sql);
      if (sql !== undefined && /listen/i.test(sql)) {
        for (const { words } of sqlStatements(sql)) {
          if (words[0] !== 'listen' || !words[1]) continue;
          (s.listenNamed ??= new Set()).add(words[1].startsWith('"') ? words[1].slice(1) : words[1]);
        }
      }

      const { msg: command, parsedStatement } = wire.namespaceMessage(raw, `s${s.id}_`);
      if (parsedStatement) {
        s.statements.add(parsedStatement);
        (s.parses ??= new Map()).set(parsedStatement, command);
        s.aside?.delete(parsedStatement);
      }
      const msg = copyUnit ? Buffer.concat([command, ...copyUnit.slice(1)]) : command;
      // What the engine takes out of the reply: the CopyInResponse the client
      // already has (copy-in.ts), and notifications, which go to their
      // listeners rather than to whoever runs when they are sent.
      let copyResponsePending = copyUnit !== undefined;
      const scanning = this.notifications.active;
      const notifications: Buffer[] = [];
      const filter =
        copyResponsePending || scanning
          ? new wire.ReplyFilter(
              (m) => {
                if (copyResponsePending && m[0] === 0x47) return !(copyResponsePending = false);
                if (scanning && m[0] === 0x41) return notifications.push(Buffer.from(m)) > 0;
                return false;
              },
              () => !copyResponsePending && !scanning,
            )
          : null;
      mark(s, 'exec');
      // The last bytes of the reply: a unit of work is over when it ends with
      // ReadyForQuery, idle ('Z', length 5, 'I'). Until then (a transaction, an
      // extended-protocol batch before Sync, COPY FROM STDIN waiting for its
      // data) the backend stays this client's.
      let tail: Buffer = Buffer.alloc(0);
      // Output a client leaves unread is bounded: PGlite cannot pause a
      // running statement, so past the cap the rest of its reply is dropped
      // (the statement still runs to its end) and the connection ended.
      const cap = this.options.maxPendingOutputBytes ?? Infinity;
      let dropped = 0;
      await db.execProtocolRawStream(new Uint8Array(msg), {
        // `data` is a view into the WASM heap that the next output overwrites,
        // while a socket under backpressure keeps what it is given to send
        // later: hand it a copy.
        onRawData: (data: Uint8Array) => {
          const copy = filter ? filter.push(Buffer.from(data)) : Buffer.from(data);
          if (copy.length === 0) return;
          tail = copy.length >= 6 ? copy.subarray(copy.length - 6) : Buffer.concat([tail, copy]).subarray(-6);
          if (!s.alive || dropped || (s.socket.writableLength ?? 0) + copy.length > cap) dropped += copy.length;
          else s.socket.write(copy);
        },
      });
      const held = filter?.flush();
      if (held?.length && s.alive && !dropped) s.socket.write(held);
      if (dropped && s.alive) {
        this.end(
          s,
          '54000',
          `the client did not read its results: over ${cap} bytes were waiting to be sent, so the rest of the reply (${dropped} bytes) was dropped and the connection ended (PgClusterLimits.maxPendingOutputBytes)`,
        );
      }
      if (notifications.length) {
        // This client may have started listening in the same unit.
        const now = await db.query<{ c: string }>('select pg_listening_channels() as c');
        await this.relisten(
          db,
          s,
          now.rows.map((r) => r.c),
        );
        for (const n of notifications) this.notifications.deliver(n);
      }
      const ready = tail.length === 6 && tail[0] === 0x5a && tail.readInt32BE(1) === 5;
      if (ready) s.txStatus = String.fromCharCode(tail[5]!) as 'I' | 'T' | 'E';
      // (An aborted transaction changes no setting, and can run nothing.)
      if (ready && tail[5] !== 0x45 && s.resetValues && s.alive) this.keepResetValues(db, s);
      const idle = ready && tail[5] === 0x49;
      if (idle && s.untrusted && s.alive && !this.keepsBackend(db, s)) return;
      if (idle && !s.holdsCursors) this.release(s);
      else if (this.owner === s) this.ownerIdleSince = Date.now();
      mark(s, 'done');
    } catch (err) {
      mark(s, 'done');
      this.release(s);
      throw err;
    }
  }

  async disconnect(s: Session): Promise<void> {
    s.alive = false;
    await s.queue;
    this.sessions.delete(s);
    await this.acquire(s);
    try {
      const db = this.db;
      if (db) {
        if (db.isInTransaction()) await db.exec('rollback');
        if (s.holdsCursors) await db.exec('close all');
        for (const name of s.statements) {
          await db.exec(`deallocate ${quoteIdent(name)}`).catch(() => undefined);
        }
        if (this.applied === s) await this.leave(db);
        for (const c of this.notifications.forget(s)) await db.exec(`unlisten ${quoteIdent(c)}`);
      }
    } catch {
      // The instance may be closing; there is nothing left to clean.
    } finally {
      this.release(s);
    }
  }
}

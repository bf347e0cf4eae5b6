// The embedded "cluster": one loopback listener speaking the Postgres
// protocol, routing each connection by database name to its PGlite instance
// (the persistent database and the throw-away shadow), like a real server
// with two databases. Each login role authenticates with its own password:
// the owner and the authenticator with the ones generated in the data
// directory, any other role with the password Postgres stores for it
// (pg_authid, SCRAM or MD5), as a server with password authentication would;
// a role without a password, or without LOGIN, cannot log in.
import net from 'node:net';
import { createHash, createHmac, pbkdf2, randomInt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import * as wire from './wire.ts';
import { pgDump } from '@electric-sql/pglite-tools/pg_dump';
import { ENGINE_SCHEMA } from './login-boundary.ts';
import { checkStartupSettings, REPORTED, StartupSettingError, startupSettings } from './startup-settings.ts';
import {
  BACKEND_BUSY_SQLSTATE,
  BACKEND_WAIT_SETTING,
  BackendBusyError,
  DUMP_COMMAND,
  noteQueued,
  type PgDatabase,
  type Session,
  type SessionOutput,
} from './pg-server.ts';

export interface PgClusterLimits {
  /** Connections at once (max_connections). */
  maxConnections: number;
  /** Time from connecting to logging in (authentication_timeout). */
  startupTimeoutMs: number;
  /** Largest frontend message (a server's is 1 GB). */
  maxMessageBytes: number;
  /** Most data one COPY … FROM STDIN may send: the engine holds it until CopyDone (copy-in.ts). */
  maxCopyInBytes: number;
  /**
   * Most output waiting for one client that does not read it: past it the rest
   * of the reply is dropped and the connection ended (a running statement
   * cannot be paused). Past a sixteenth of it the client's next message waits
   * until it has read (pg-server.ts).
   */
  maxPendingOutputBytes: number;
  /** Wrong passwords one source address may send before each further login attempt from it waits. */
  loginFreeFailures: number;
  /** That first wait; each further wrong password doubles it, up to loginMaxDelayMs; the right one resets it. */
  loginBaseDelayMs: number;
  loginMaxDelayMs: number;
  /** Login attempts from one address waiting their turn at once; past it a new one is refused at once. */
  loginMaxPending: number;
}

export const DEFAULT_CLUSTER_LIMITS: PgClusterLimits = {
  maxConnections: 200,
  startupTimeoutMs: 10_000,
  maxMessageBytes: 256 * 1024 * 1024,
  maxCopyInBytes: 512 * 1024 * 1024,
  maxPendingOutputBytes: 64 * 1024 * 1024,
  // 3 free, then 0.5 s, 1 s, 2 s … 30 s: a guesser gets a few dozen tries in its first minute, then 2 a minute.
  loginFreeFailures: 3,
  loginBaseDelayMs: 500,
  loginMaxDelayMs: 30_000,
  loginMaxPending: 8,
};

/** How long a source with `failures` wrong passwords in a row waits before its next attempt is checked. */
export function loginDelayMs(failures: number, limits: Pick<PgClusterLimits, 'loginFreeFailures' | 'loginBaseDelayMs' | 'loginMaxDelayMs'>): number {
  if (failures < limits.loginFreeFailures) return 0;
  return Math.min(limits.loginBaseDelayMs * 2 ** (failures - limits.loginFreeFailures), limits.loginMaxDelayMs);
}

interface SourceState {
  failures: number;
  /** When its next attempt may be checked. */
  notBefore: number;
  /** Its attempts waiting or being checked. */
  pending: number;
  /** Its attempts, one after another: parallel connections do not multiply its rate. */
  queue: Promise<unknown>;
  lastFailure: number;
}

/** How many sources the throttle remembers (the oldest are forgotten first). */
const MAX_SOURCES = 10_000;

/**
 * Password attempts per source address and login, one at a time, each
 * waiting out the back-off its wrong passwords have earned (as auth_delay
 * would, but growing): a brute force from one address slows to a few
 * attempts a minute, while another address is not slowed at all. (Keyed by
 * login too, because on loopback every local client has the same address: a
 * guesser slows down its own target, not everyone's logins.)
 */
export class LoginThrottle {
  private readonly sources = new Map<string, SourceState>();
  private readonly limits: PgClusterLimits;

  constructor(limits: PgClusterLimits) {
    this.limits = limits;
  }

  /** Runs `check` in `source`'s turn; 'busy' when too many of its attempts are already waiting (nothing is checked). */
  async attempt(source: string, check: () => Promise<boolean>): Promise<boolean | 'busy'> {
    const now = Date.now();
    let st = this.sources.get(source);
    // A source quiet for longer than the longest wait starts afresh.
    if (st && st.pending === 0 && now - st.lastFailure > 2 * this.limits.loginMaxDelayMs) st = undefined;
    if (!st) {
      if (this.sources.size >= MAX_SOURCES) this.sources.delete(this.sources.keys().next().value!);
      st = { failures: 0, notBefore: 0, pending: 0, queue: Promise.resolve(), lastFailure: now };
      this.sources.set(source, st);
    }
    if (st.pending >= this.limits.loginMaxPending) return 'busy';
    const state = st;
    state.pending++;
    const turn = state.queue.then(async () => {
      const wait = state.notBefore - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait).unref());
      const ok = await check();
      if (ok) {
        state.failures = 0;
        state.notBefore = 0;
      } else {
        state.failures++;
        state.lastFailure = Date.now();
        state.notBefore = state.lastFailure + loginDelayMs(state.failures, this.limits);
      }
      return ok;
    });
    state.queue = turn.catch(() => undefined);
    try {
      return await turn;
    } finally {
      state.pending--;
      if (state.pending === 0 && state.failures === 0) this.sources.delete(source);
    }
  }
}

/** A server's MAX_STARTUP_PACKET_LENGTH. */
const MAX_STARTUP_PACKET = 10_000;

/**
 * The messages a client may send after logging in (simple and extended query,
 * COPY data, termination). Anything else is answered with an ErrorResponse and
 * the connection closed, before it reaches the shared backend.
 */
const FRONTEND_MESSAGES = new Set(['Q', 'P', 'B', 'E', 'D', 'C', 'H', 'S', 'X', 'd', 'c', 'f']);

export interface PgClusterOptions {
  /** Passwords of the roles whose secrets live in the data directory (the owner, the engine superuser, the authenticator). */
  passwords: Record<string, string>;
  limits?: Partial<PgClusterLimits>;
  /** Databases by name. */
  databases: Record<string, PgDatabase>;
  /** Names that reach an existing database (e.g. the maintenance database `postgres`). */
  aliases?: Record<string, string>;
}

const sameSecret = (given: string, expected: string): boolean => {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
};

/** Whether `given` is the password behind a pg_authid.rolpassword (SCRAM-SHA-256 or MD5) of `user`. */
export async function matchesStoredPassword(user: string, given: string, stored: string | null): Promise<boolean> {
  if (!stored) return false;
  const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(stored);
  if (scram) {
    // (Off the engine's thread: 4,096 rounds of PBKDF2 take milliseconds.)
    const salted = await promisify(pbkdf2)(given.normalize('NFKC'), Buffer.from(scram[2]!, 'base64'), Number(scram[1]), 32, 'sha256');
    const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest();
    return timingSafeEqual(storedKey, Buffer.from(scram[3]!, 'base64'));
  }
  if (/^md5[0-9a-f]{32}$/.test(stored))
    return sameSecret(
      `md5${createHash('md5')
        .update(given + user)
        .digest('hex')}`,
      stored,
    );
  return false;
}

/** `name=value` settings in the order given, a later one replacing an earlier one of the same name. */
function loginSettings(settings: string[]): Array<[string, string]> {
  const byName = new Map<string, string>();
  for (const cfg of settings) {
    const at = cfg.indexOf('=');
    if (at > 0) byName.set(cfg.slice(0, at), cfg.slice(at + 1));
  }
  return [...byName];
}

const quoteName = /^\s*(?:drop|create|alter)\s+database\s+(?:if\s+exists\s+)?("(?:[^"]|"")+"|\w+)|\bon\s+database\s+("(?:[^"]|"")+"|\w+)/i;

export class PgCluster {
  private readonly options: PgClusterOptions;
  private readonly server: net.Server;
  private readonly limits: PgClusterLimits;
  /** Connections accepted and not yet closed (refused ones close themselves within a second). */
  private readonly sockets = new Set<net.Socket>();
  private readonly throttle: LoginThrottle;
  private nextId = 1;

  constructor(options: PgClusterOptions) {
    this.options = options;
    this.limits = { ...DEFAULT_CLUSTER_LIMITS, ...options.limits };
    this.throttle = new LoginThrottle(this.limits);
    this.server = net.createServer((socket) => this.accept(socket));
  }

  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // As a server's shutdown does: connections still open are cut.
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(Object.values(this.options.databases).map((d) => d.close()));
    await closed;
  }

  private database(name: string): PgDatabase | undefined {
    return this.options.databases[this.options.aliases?.[name] ?? name];
  }

  /**
   * Database-level commands, as graphile-migrate's reset issues them: dropping
   * a database wipes its instance; creating, altering, granting or revoking on
   * one of ours succeeds without effect (each instance holds one database).
   */
  private async databaseCommand(sql: string): Promise<Buffer> {
    const m = quoteName.exec(sql);
    const raw = m?.[1] ?? m?.[2] ?? '';
    const name = raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw.toLowerCase();
    const verb = /^\s*(\w+)/.exec(sql)![1]!.toLowerCase();
    const target = this.options.databases[name];
    if (!target) {
      if (verb === 'drop' && /\bif\s+exists\b/i.test(sql)) return wire.commandComplete('DROP DATABASE');
      return wire.errorResponse(
        'ERROR',
        '0A000',
        `the embedded engine serves only the databases ${Object.keys(this.options.databases).join(', ')}; "${name}" is not one of them`,
      );
    }
    if (verb === 'drop') {
      await target.wipe();
      return wire.commandComplete('DROP DATABASE');
    }
    return wire.commandComplete(verb === 'grant' || verb === 'revoke' ? verb.toUpperCase() : `${verb.toUpperCase()} DATABASE`);
  }

  /** pg_dump (PGlite's WASM build) of one database as plain SQL with INSERTs, so any client can restore it. */
  private async dump(database: PgDatabase, superuser: boolean): Promise<Buffer> {
    if (!superuser) return wire.errorResponse('ERROR', '42501', 'SHERATAN DUMP needs a superuser login (the owner)');
    // (The engine's own schema, the seal's functions, is the engine's, not the store's: left out.)
    const file = await database.exclusive((db) =>
      pgDump({ pg: db, args: ['--no-owner', '--inserts', '--rows-per-insert=200', `--exclude-schema=${ENGINE_SCHEMA}`] }),
    );
    return wire.singleTextRow('dump', await file.text());
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    // A connection cap, as max_connections: past it a client is told so, and the others keep their descriptors.
    if (this.sockets.size >= this.limits.maxConnections) {
      socket.end(
        wire.errorResponse('FATAL', '53300', `sorry, too many clients already (the embedded engine accepts ${this.limits.maxConnections} connections)`),
      );
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.sockets.add(socket);
    const reader = new wire.FrameReader();
    let session: Session | null = null;
    let database: PgDatabase | null = null;
    let startup: Record<string, string> | null = null;
    let negotiated = false;
    let closed = false;

    const fail = (code: string, text: string): void => {
      if (closed) return;
      closed = true;
      socket.end(wire.errorResponse('FATAL', code, text));
      // A client that does not close its end is cut off shortly after.
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    // authentication_timeout: a client that has not logged in by then is dropped.
    const failWith = (err: unknown): void => fail(err instanceof wire.ProtocolError ? err.code : '08P01', (err as Error).message);
    const startupTimer = setTimeout(() => fail('08P01', `no login within ${this.limits.startupTimeoutMs} ms (startup timeout)`), this.limits.startupTimeoutMs);
    startupTimer.unref();
    socket.on('close', () => {
      closed = true;
      clearTimeout(startupTimer);
      this.sockets.delete(socket);
      if (session && database) void database.disconnect(session);
    });

    // A message that waited past the session's BACKEND_WAIT_SETTING ran nothing and never had the backend, so
    // its session is in no transaction: an ERROR, then (as Postgres after an error in extended protocol) the
    // rest of its unit dropped up to Sync, which is answered ReadyForQuery.
    const refuseBusy = (s: Session, type: string, err: BackendBusyError): void => {
      socket.write(wire.errorResponse('ERROR', BACKEND_BUSY_SQLSTATE, err.message));
      if (type === 'Q' || type === 'S') socket.write(wire.readyForQuery('I'));
      else s.discardingUntilSync = true;
    };
    const discard = (s: Session, type: string): void => {
      if (type !== 'S') return;
      s.discardingUntilSync = false;
      socket.write(wire.readyForQuery('I'));
    };

    const serve = (): void => {
      if (closed || !session || !database) return;
      for (let m = reader.nextMessage(this.limits.maxMessageBytes); m; m = reader.nextMessage(this.limits.maxMessageBytes)) {
        const type = String.fromCharCode(m[0]!);
        if (!FRONTEND_MESSAGES.has(type)) {
          throw new wire.ProtocolError(
            '08P01',
            `unsupported frontend message type '${type.replace(/[^\x20-\x7e]/g, '?')}' (0x${m[0]!.toString(16).padStart(2, '0')})`,
          );
        }
        const s = session;
        const d = database;
        // A client that does not read its results stops being read from too, until it catches up.
        if (socket.writableLength > this.limits.maxPendingOutputBytes / 16 && !socket.isPaused()) {
          socket.pause();
          socket.once('drain', () => socket.resume());
        }
        noteQueued(s);
        s.queue = s.queue
          .then(() => (s.discardingUntilSync && type !== 'X' ? discard(s, type) : d.handle(s, m, s.backendWaitMs)))
          .catch((err: unknown) => {
            if (err instanceof BackendBusyError) return refuseBusy(s, type, err);
            fail('XX000', `embedded server: ${String(err)}`);
          });
      }
    };

    const negotiate = (): void => {
      for (;;) {
        if (closed || session) return;
        if (startup) {
          const m = reader.nextMessage(MAX_STARTUP_PACKET);
          if (!m) return;
          if (m[0] !== 'p'.charCodeAt(0)) return fail('08P01', 'expected a password message');
          const given = wire.readCString(m.subarray(5), 0)[0];
          const user = startup.user ?? '';
          const dbName = startup.database || user;
          const target = this.database(dbName);
          if (!target) return fail('3D000', `database "${dbName}" does not exist`);
          const params = startup;
          startup = null;
          // The client has done its part; the rest (the backend may be busy) is the server's wait.
          clearTimeout(startupTimer);
          const source = socket.remoteAddress ?? '';
          void this.throttle
            .attempt(`${source} ${user}`, () => this.authenticate(target, user, given))
            .then((ok) => {
              if (ok === 'busy') {
                fail(
                  '53300',
                  `too many login attempts for "${user}" from ${source} are waiting their turn (wrong passwords slow the next attempts); try again later`,
                );
                return null;
              }
              if (!ok) {
                fail('28P01', `password authentication failed for user "${user}"`);
                return null;
              }
              return this.login(socket, target, user, params);
            })
            .then(
              (s) => {
                if (!s) return;
                session = s;
                database = target;
                try {
                  serve();
                } catch (err) {
                  failWith(err);
                }
              },
              (err: unknown) => fail('XX000', `embedded server: ${String(err)}`),
            );
          return;
        }
        const frame = reader.nextStartup(MAX_STARTUP_PACKET);
        if (!frame) return;
        const code = frame.readInt32BE(4);
        const body = frame.subarray(8);
        if (code === wire.SSL_REQUEST || code === wire.GSSENC_REQUEST) {
          // One negotiation, as a server allows; a client repeating it is broken or hostile.
          if (negotiated) return fail('08P01', 'SSL or GSS negotiation requested twice');
          negotiated = true;
          socket.write('N');
        } else if (code === wire.CANCEL_REQUEST) {
          // A statement runs inside one synchronous call into PGlite, which
          // nothing can interrupt: the request is answered as unsupported (a
          // server sends nothing back; clients close this connection unread).
          return fail(
            '0A000',
            'cancel requests are not supported by the embedded engine: a running statement cannot be interrupted (see packages/pglite-server/README.md)',
          );
        } else if (code === wire.PROTOCOL_3) {
          startup = wire.startupParameters(body);
          socket.write(wire.authenticationCleartextPassword());
        } else {
          return fail('0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
        }
      }
    };

    socket.on('data', (chunk: Buffer) => {
      if (closed) return;
      reader.push(chunk);
      try {
        if (session && database) serve();
        else negotiate();
      } catch (err) {
        failWith(err);
      }
    });
  }

  /** Whether `given` is `user`'s password: its data-directory secret, or what pg_authid stores. */
  private async authenticate(database: PgDatabase, user: string, given: string): Promise<boolean> {
    const secret = this.options.passwords[user];
    if (secret !== undefined) return sameSecret(given, secret);
    const stored = await database.exclusive((d) => d.query<{ rolpassword: string | null }>('select rolpassword from pg_authid where rolname = $1', [user]));
    return matchesStoredPassword(user, given, stored.rows[0]?.rolpassword ?? null);
  }

  private async isSuperuser(database: PgDatabase, user: string, waitMs?: number): Promise<boolean> {
    const r = await database.exclusive((d) => d.query<{ rolsuper: boolean }>('select rolsuper from pg_roles where rolname = $1', [user]), waitMs);
    return r.rows[0]?.rolsuper === true;
  }

  /** A session of `user` (who must be allowed to log in) on `database`, replying to `output`; `waitMs` bounds the wait for the backend. */
  async openSession(database: PgDatabase, user: string, output: SessionOutput, waitMs?: number): Promise<Session | string> {
    // With the settings a server applies at login (ALTER DATABASE / ALTER
    // ROLE … SET): the database's, then the role's, then both together.
    const role = await database.exclusive(
      (d) =>
        d.query<{ rolcanlogin: boolean; rolsuper: boolean; settings: string[] }>(
          `select r.rolcanlogin, r.rolsuper,
                coalesce((select array_agg(cfg order by s.setrole <> 0, s.setdatabase <> 0)
                            from pg_db_role_setting s, unnest(s.setconfig) cfg
                           where s.setrole in (0, r.oid)
                             and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))), '{}') as settings
           from pg_roles r where r.rolname = $1`,
          [user],
        ),
      waitMs,
    );
    const found = role.rows[0];
    if (!found || !found.rolcanlogin) return found ? `role "${user}" is not permitted to log in` : `role "${user}" does not exist`;
    const session: Session = {
      id: this.nextId++,
      socket: output,
      user,
      role: user,
      alive: true,
      dirty: false,
      saved: loginSettings(found.settings),
      statements: new Set(),
      queue: Promise.resolve(),
      // Dropping a database wipes its instance: as a server requires its owner (or a superuser), only a superuser login may.
      databaseCommand: async (sql) =>
        DUMP_COMMAND.test(sql)
          ? this.dump(database, found.rolsuper)
          : found.rolsuper
            ? this.databaseCommand(sql)
            : wire.errorResponse(
                'ERROR',
                '42501',
                `database commands (DROP, CREATE, ALTER DATABASE, GRANT … ON DATABASE) need a superuser login on the embedded engine; "${user}" is not one`,
              ),
    };
    database.addSession(session);
    return session;
  }

  private async login(socket: net.Socket, database: PgDatabase, user: string, params: Record<string, string>): Promise<Session | null> {
    try {
      return await this.loginWithin(socket, database, user, params);
    } catch (err) {
      // The login's own bound on waiting for the backend (BACKEND_WAIT_SETTING) holds while it logs in, too.
      if (!(err instanceof BackendBusyError)) throw err;
      socket.end(wire.errorResponse('FATAL', BACKEND_BUSY_SQLSTATE, err.message));
      return null;
    }
  }

  private async loginWithin(socket: net.Socket, database: PgDatabase, user: string, params: Record<string, string>): Promise<Session | null> {
    // The settings the client sent (startup-settings.ts), checked by Postgres
    // as the login before it is one: a bad one is refused as a server refuses it.
    let settings: Array<[string, string]>;
    let reported: Record<string, string>;
    let waitMs: number | undefined;
    try {
      settings = startupSettings(params);
      const wait = settings.findLast(([name]) => name.toLowerCase() === BACKEND_WAIT_SETTING)?.[1];
      if (wait !== undefined && !/^[1-9][0-9]{0,8}$/.test(wait)) {
        throw new StartupSettingError('22023', `invalid value for parameter "${BACKEND_WAIT_SETTING}": "${wait}" (a whole number of milliseconds, at least 1)`);
      }
      waitMs = wait === undefined ? undefined : Number(wait);
      reported = await database.exclusive((db) => checkStartupSettings(db, user, settings), waitMs);
    } catch (err) {
      if (!(err instanceof StartupSettingError)) throw err;
      socket.end(wire.errorResponse('FATAL', err.code, err.message));
      return null;
    }
    const superuser = await this.isSuperuser(database, user, waitMs);
    // As on a server, only a superuser login may start as another role: the
    // check above ran before the backend is sealed for this login, so it
    // would pass (login-boundary.ts).
    const other = settings.find(([name, value]) => name.toLowerCase() === 'session_authorization' && value !== user);
    if (other && !superuser) {
      socket.end(wire.errorResponse('FATAL', '42501', `permission denied to set session authorization "${other[1]}"`));
      return null;
    }
    const session = await this.openSession(database, user, socket, waitMs);
    if (typeof session === 'string') {
      socket.end(wire.errorResponse('FATAL', '28000', session));
      return null;
    }
    if (waitMs !== undefined) session.backendWaitMs = waitMs;
    // Above ALTER ROLE / DATABASE … SET, as on a server; the session's own state from here on.
    session.saved = [...session.saved, ...settings];
    // What RESET returns to, as on a server: the login's settings, the last
    // of a name winning (the login's identity, session_authorization and
    // role, is the engine's to keep; see PgDatabase.keepResetValues).
    const resetValues = new Map<string, [string, string]>();
    for (const [name, value] of session.saved) {
      if (!['session_authorization', 'role'].includes(name.toLowerCase())) resetValues.set(name.toLowerCase(), [name, value]);
    }
    if (resetValues.size) session.resetValues = resetValues;
    session.untrusted = true;
    session.restricted = !superuser;
    socket.write(
      Buffer.concat([
        wire.authenticationOk(),
        wire.parameterStatus('server_version', database.serverVersion),
        wire.parameterStatus('server_encoding', 'UTF8'),
        ...REPORTED.map((name) => wire.parameterStatus(name, reported[name]!)),
        wire.parameterStatus('integer_datetimes', 'on'),
        wire.parameterStatus('standard_conforming_strings', 'on'),
        wire.parameterStatus('session_authorization', user),
        wire.backendKeyData(session.id, randomInt(2 ** 31 - 1)),
        wire.readyForQuery('I'),
      ]),
    );
    return session;
  }
}

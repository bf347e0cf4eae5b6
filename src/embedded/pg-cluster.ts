// The embedded "cluster": one loopback listener speaking the Postgres
// protocol, routing each connection by database name to its PGlite instance
// (the persistent database and the throw-away shadow), like a real server
// with two databases. Logins are checked against a generated password and
// pg_roles (LOGIN required).
import net from 'node:net';
import { randomInt, timingSafeEqual } from 'node:crypto';
import * as wire from './wire.ts';
import { pgDump } from '@electric-sql/pglite-tools/pg_dump';
import { DUMP_COMMAND, noteQueued, type PgDatabase, type Session, type SessionOutput } from './pg-server.ts';

export interface PgClusterOptions {
  password: string;
  /** Databases by name. */
  databases: Record<string, PgDatabase>;
  /** Names that reach an existing database (e.g. the maintenance database `postgres`). */
  aliases?: Record<string, string>;
}

const quoteName = /^\s*(?:drop|create|alter)\s+database\s+(?:if\s+exists\s+)?("(?:[^"]|"")+"|\w+)|\bon\s+database\s+("(?:[^"]|"")+"|\w+)/i;

export class PgCluster {
  private readonly options: PgClusterOptions;
  private readonly server: net.Server;
  private nextId = 1;

  constructor(options: PgClusterOptions) {
    this.options = options;
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
      return wire.errorResponse('ERROR', '0A000', `the embedded engine serves only the databases ${Object.keys(this.options.databases).join(', ')}; "${name}" is not one of them`);
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
    const file = await database.exclusive((db) => pgDump({ pg: db, args: ['--no-owner', '--inserts', '--rows-per-insert=200'] }));
    return wire.singleTextRow('dump', await file.text());
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    let buffer: Buffer = Buffer.alloc(0);
    let session: Session | null = null;
    let database: PgDatabase | null = null;
    let startup: Record<string, string> | null = null;

    const fail = (code: string, text: string): void => {
      socket.end(wire.errorResponse('FATAL', code, text));
    };
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (session && database) void database.disconnect(session);
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      try {
        if (session && database) {
          const [messages, rest] = wire.splitMessages(buffer);
          buffer = rest;
          for (const m of messages) {
            const s = session;
            const d = database;
            noteQueued(s);
            s.queue = s.queue.then(() => d.handle(s, m)).catch((err: unknown) => {
              socket.end(wire.errorResponse('FATAL', 'XX000', `embedded server: ${String(err)}`));
            });
          }
          return;
        }
        if (startup) {
          const [messages, rest] = wire.splitMessages(buffer);
          const m = messages[0];
          if (!m) return;
          buffer = Buffer.concat([...messages.slice(1), rest]);
          if (m[0] !== 'p'.charCodeAt(0)) return fail('08P01', 'expected a password message');
          const given = Buffer.from(wire.readCString(m.subarray(5), 0)[0]);
          const expected = Buffer.from(this.options.password);
          const user = startup.user ?? '';
          if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
            return fail('28P01', `password authentication failed for user "${user}"`);
          }
          const dbName = startup.database || user;
          const target = this.database(dbName);
          if (!target) return fail('3D000', `database "${dbName}" does not exist`);
          const params = startup;
          startup = null;
          void this.login(socket, target, user, params).then(
            (s) => {
              if (!s) return;
              session = s;
              database = target;
              if (buffer.length) socket.emit('data', Buffer.alloc(0));
            },
            (err: unknown) => fail('XX000', `embedded server: ${String(err)}`),
          );
          return;
        }
        if (buffer.length < 8) return;
        const len = buffer.readInt32BE(0);
        if (buffer.length < len) return;
        const code = buffer.readInt32BE(4);
        const body = buffer.subarray(8, len);
        buffer = buffer.subarray(len);
        if (code === wire.SSL_REQUEST || code === wire.GSSENC_REQUEST) {
          socket.write('N');
          if (buffer.length) socket.emit('data', Buffer.alloc(0));
        } else if (code === wire.CANCEL_REQUEST) {
          socket.end();
        } else if (code === wire.PROTOCOL_3) {
          startup = wire.startupParameters(body);
          socket.write(wire.authenticationCleartextPassword());
        } else {
          fail('0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
        }
      } catch (err) {
        fail('08P01', String(err));
      }
    });
  }

  /** A session of `user` (who must be allowed to log in) on `database`, replying to `output`. */
  async openSession(database: PgDatabase, user: string, output: SessionOutput): Promise<Session | string> {
    const role = await database.exclusive((d) =>
      d.query<{ rolcanlogin: boolean; rolsuper: boolean }>('select rolcanlogin, rolsuper from pg_roles where rolname = $1', [user]),
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
      saved: [],
      statements: new Set(),
      queue: Promise.resolve(),
      databaseCommand: (sql) => (DUMP_COMMAND.test(sql) ? this.dump(database, found.rolsuper) : this.databaseCommand(sql)),
    };
    database.addSession(session);
    return session;
  }

  private async login(socket: net.Socket, database: PgDatabase, user: string, params: Record<string, string>): Promise<Session | null> {
    const session = await this.openSession(database, user, socket);
    if (typeof session === 'string') {
      socket.end(wire.errorResponse('FATAL', '28000', session));
      return null;
    }
    socket.write(
      Buffer.concat([
        wire.authenticationOk(),
        wire.parameterStatus('server_version', database.serverVersion),
        wire.parameterStatus('server_encoding', 'UTF8'),
        wire.parameterStatus('client_encoding', 'UTF8'),
        wire.parameterStatus('DateStyle', 'ISO, MDY'),
        wire.parameterStatus('TimeZone', 'UTC'),
        wire.parameterStatus('integer_datetimes', 'on'),
        wire.parameterStatus('standard_conforming_strings', 'on'),
        wire.parameterStatus('application_name', params.application_name ?? ''),
        wire.parameterStatus('session_authorization', user),
        wire.backendKeyData(session.id, randomInt(2 ** 31 - 1)),
        wire.readyForQuery('I'),
      ]),
    );
    return session;
  }
}

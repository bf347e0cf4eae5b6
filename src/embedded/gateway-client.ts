// The engine's face for the gateway: PostGraphile's `withPgClient` over the
// in-process channel (channel.ts), used by the gateway in the process that runs
// the engine (tools use the other face, connection strings to the listener).
//
// It speaks the ordinary Postgres protocol with node-postgres's own message
// serializer, parser and type parsers, so results are exactly what the `pg`
// adaptor returns. The difference is the round trips: a query outside an
// explicit transaction is one pipelined batch, `set_config(role, claims…,
// local) ; query ; Sync`, which Postgres runs as one implicit transaction, so
// the single backend is held only while it works on the request. Explicit
// transactions (`withTransaction`) hold it from `begin` to `commit`, as on a
// socket.
//
// The session logs in as the authenticator (NOINHERIT, no privileges of its
// own); the request's role comes from pgSettings, transaction-locally, as with
// the `pg` adaptor. The engine makes the login the session's session user for
// both faces alike (pg-server.ts), so Postgres itself refuses a role the
// authenticator is not a member of, as on a server.
import { Readable } from 'node:stream';
import { parse, serialize, type DatabaseError } from 'pg-protocol';
import pg from 'pg';
import Result from 'pg/lib/result.js';
import utils from 'pg/lib/utils.js';
import type { PgClient, PgClientQuery, PgClientResult, WithPgClient } from 'postgraphile/@dataplan/pg';
import type { ChannelClient } from './channel.ts';

type Notice = NonNullable<PgClientResult<unknown>['notices']>[number];

const SET_SETTINGS = 'select set_config(el->>0, el->>1, true) from json_array_elements($1::json) el';
const SYNC = serialize.sync();

const prepareValue = (value: unknown): unknown => utils.prepareValue(value);

/** Prepared statements of one channel session: query key → statement name. */
interface Prepared {
  names: Map<string, string>;
  /** Names are never reused within a session. */
  next: number;
}
const noPrepared = (): Prepared => ({ names: new Map(), next: 1 });
/** Enough for every query shape a schema produces in practice; beyond it, statements go unnamed. */
const MAX_PREPARED = 200;

/**
 * Parse (once per session for a named query), Bind, Describe and Execute.
 * Pushes onto `parsed` what each Parse sent would register when it succeeds.
 */
function statement(
  prepared: Prepared,
  parsed: Array<[string, string] | null>,
  key: string | undefined,
  text: string,
  values: readonly unknown[] = [],
): Buffer[] {
  let name = key === undefined ? undefined : prepared.names.get(key);
  const out: Buffer[] = [];
  if (name === undefined) {
    if (key !== undefined && prepared.next <= MAX_PREPARED) {
      name = `q${prepared.next++}`;
      parsed.push([key, name]);
    } else {
      parsed.push(null);
    }
    out.push(serialize.parse({ text, ...(name ? { name } : {}) }));
  }
  out.push(
    serialize.bind({ statement: name ?? '', values: [...values], valueMapper: prepareValue }),
    serialize.describe({ type: 'P' }),
    serialize.execute(),
  );
  return out;
}

interface BackendMessage {
  name: string;
  fields?: unknown[];
  text?: string;
}

/**
 * Reads a batch's replies: the result of statement number `target` (0-based),
 * the first error, notices; records the statements that were prepared.
 */
async function readReplies(
  data: Buffer,
  target: number,
  arrayMode: boolean,
  prepared: Prepared,
  parsed: Array<[string, string] | null>,
): Promise<PgClientResult<unknown>> {
  const result = new Result(arrayMode ? 'array' : undefined, pg.types);
  const notices: Notice[] = [];
  let error: DatabaseError | null = null;
  let index = 0;
  let parses = 0;
  await parse(Readable.from([data]), (msg) => {
    const m = msg as unknown as BackendMessage;
    switch (m.name) {
      case 'parseComplete': {
        const named = parsed[parses++];
        if (named) prepared.names.set(named[0], named[1]);
        break;
      }
      case 'rowDescription':
        if (index === target) result.addFields(m.fields);
        break;
      case 'dataRow':
        if (index === target) result.addRow(result.parseRow(m.fields));
        break;
      case 'commandComplete':
        if (index === target) result.addCommandComplete(m);
        index++;
        break;
      case 'emptyQuery':
        index++;
        break;
      case 'error':
        error ??= msg as DatabaseError;
        break;
      case 'notice':
        notices.push(toNotice(msg as DatabaseError));
        break;
    }
  });
  if (error) throw error;
  return { rows: result.rows, rowCount: result.rowCount, notices };
}

function toNotice(n: DatabaseError): Notice {
  return {
    severity: (n.severity ?? 'NOTICE') as Notice['severity'],
    message: n.message ?? '',
    code: n.code,
    detail: n.detail,
    hint: n.hint,
    position: n.position != null ? Number.parseInt(n.position, 10) : undefined,
    where: n.where,
    schema: n.schema,
    table: n.table,
    column: n.column,
    dataType: n.dataType,
    constraint: n.constraint,
    file: n.file,
    line: n.line != null ? Number.parseInt(n.line, 10) : undefined,
    routine: n.routine,
  };
}

/** One engine session: the line, the session number, its login and how long a batch may wait for the backend. */
interface SessionLine {
  channel: ChannelClient;
  sid: number;
  user: string;
  /** DB_POOL_TIMEOUT_MS: a batch that cannot have the backend within this long fails with BACKEND_BUSY. */
  waitMs?: number;
}

class EngineClient implements PgClient {
  private readonly line: SessionLine;
  private readonly settings: string | null;
  private readonly prepared: Prepared;
  /** 0: no explicit transaction; 1: in `begin`; 2…: savepoints. */
  private readonly level: number;

  constructor(line: SessionLine, settings: string | null, prepared: Prepared, level = 0) {
    this.line = line;
    this.settings = settings;
    this.prepared = prepared;
    this.level = level;
  }

  private async run(
    messages: Buffer[],
    target: number,
    arrayMode = false,
    parsed: Array<[string, string] | null> = [],
  ): Promise<PgClientResult<unknown>> {
    const { channel, sid, user, waitMs } = this.line;
    const reply = await channel.send(sid, user, Buffer.concat(messages), waitMs);
    return readReplies(reply, target, arrayMode, this.prepared, parsed);
  }

  private settingsStatement(parsed: Array<[string, string] | null>): Buffer[] {
    return statement(this.prepared, parsed, SET_SETTINGS, SET_SETTINGS, [this.settings]);
  }

  async query<TData>(opts: PgClientQuery): Promise<PgClientResult<TData>> {
    try {
      return await this.queryOnce<TData>(opts);
    } catch (err) {
      // The database was dropped and recreated under us (db:reset): prepare again.
      if ((err as { code?: string }).code !== '26000' || this.prepared.names.size === 0) throw err;
      this.prepared.names.clear();
      return this.queryOnce<TData>(opts);
    }
  }

  private async queryOnce<TData>(opts: PgClientQuery): Promise<PgClientResult<TData>> {
    const parsed: Array<[string, string] | null> = [];
    // Outside an explicit transaction the settings ride in the same implicit transaction.
    const withSettings = this.level === 0 && this.settings !== null;
    const messages = withSettings ? this.settingsStatement(parsed) : [];
    // Keyed by name and text: a name reused for other SQL must not run the old statement.
    const key = opts.name === undefined ? undefined : `${opts.name}\u0000${opts.text}`;
    messages.push(...statement(this.prepared, parsed, key, opts.text, opts.values), SYNC);
    return (await this.run(messages, withSettings ? 1 : 0, opts.arrayMode, parsed)) as PgClientResult<TData>;
  }

  async withTransaction<T>(callback: (client: this) => Promise<T>): Promise<T> {
    const savepoint = `tx${this.level}`;
    if (this.level === 0) {
      const parsed: Array<[string, string] | null> = [];
      const begin = [serialize.query('begin')];
      if (this.settings !== null) begin.push(...this.settingsStatement(parsed), SYNC);
      await this.run(begin, -1, false, parsed);
    } else {
      await this.run([serialize.query(`savepoint ${savepoint}`)], -1);
    }
    const inner = new EngineClient(this.line, this.settings, this.prepared, this.level + 1) as this;
    try {
      const result = await callback(inner);
      await this.run([serialize.query(this.level === 0 ? 'commit' : `release savepoint ${savepoint}`)], -1);
      return result;
    } catch (err) {
      await this.run([serialize.query(this.level === 0 ? 'rollback' : `rollback to savepoint ${savepoint}`)], -1).catch(() => undefined);
      throw err;
    }
  }
}

/**
 * A `withPgClient` whose sessions log in as `user` over `channel`; a query
 * waiting longer than `waitMs` for the backend (held by another client) fails
 * with code BACKEND_BUSY instead of waiting on.
 */
export function makeEngineWithPgClient(channel: ChannelClient, user: string, waitMs?: number): WithPgClient<PgClient> {
  const lineOf = (sid: number): SessionLine => ({ channel, sid, user, ...(waitMs ? { waitMs } : {}) });
  /** Sessions not in use, each with the statements it has prepared. */
  const idle: Array<{ sid: number; prepared: Prepared }> = [];
  const withPgClient = async <T>(
    pgSettings: Record<string, string | undefined> | null,
    callback: (client: PgClient) => T | Promise<T>,
  ): Promise<T> => {
    const entries = Object.entries(pgSettings ?? {}).filter((e): e is [string, string] => e[1] != null);
    const session = idle.pop() ?? { sid: channel.newSession(), prepared: noPrepared() };
    try {
      return await callback(new EngineClient(lineOf(session.sid), entries.length ? JSON.stringify(entries) : null, session.prepared));
    } finally {
      idle.push(session);
    }
  };
  return withPgClient;
}

// PostGraphile's `withPgClient` over the embedded engine's in-process channel
// (src/embedded/channel.ts), used by the gateway that runs the engine.
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
// the `pg` adaptor. The engine's backend is a superuser session underneath, so
// Postgres itself would let any role be set: this client refuses a role the
// login role is not a member of, as a real server would.
import { Readable } from 'node:stream';
import { parse, serialize, type DatabaseError } from 'pg-protocol';
import pg from 'pg';
import Result from 'pg/lib/result.js';
import utils from 'pg/lib/utils.js';
import type { PgClient, PgClientQuery, PgClientResult, WithPgClient } from 'postgraphile/@dataplan/pg';
import type { ChannelClient } from '../embedded/channel.ts';

type Notice = NonNullable<PgClientResult<unknown>['notices']>[number];

const SET_SETTINGS = 'select set_config(el->>0, el->>1, true) from json_array_elements($1::json) el';
const SYNC = serialize.sync();

const prepareValue = (value: unknown): unknown => utils.prepareValue(value);

/** Parse, Bind, Describe and Execute of one unnamed statement. */
function statement(text: string, values: readonly unknown[] = []): Buffer[] {
  return [
    serialize.parse({ text }),
    serialize.bind({ values: [...values], valueMapper: prepareValue }),
    serialize.describe({ type: 'P' }),
    serialize.execute(),
  ];
}

interface BackendMessage {
  name: string;
  fields?: unknown[];
  text?: string;
}

/** Reads a batch's replies: the result of statement number `target` (0-based), the first error, notices. */
async function readReplies(data: Buffer, target: number, arrayMode: boolean): Promise<PgClientResult<unknown>> {
  const result = new Result(arrayMode ? 'array' : undefined, pg.types);
  const notices: Notice[] = [];
  let error: DatabaseError | null = null;
  let index = 0;
  await parse(Readable.from([data]), (msg) => {
    const m = msg as unknown as BackendMessage;
    switch (m.name) {
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

class EngineClient implements PgClient {
  private readonly channel: ChannelClient;
  private readonly sid: number;
  private readonly user: string;
  private readonly settings: string | null;
  /** 0: no explicit transaction; 1: in `begin`; 2…: savepoints. */
  private readonly level: number;

  constructor(channel: ChannelClient, sid: number, user: string, settings: string | null, level = 0) {
    this.channel = channel;
    this.sid = sid;
    this.user = user;
    this.settings = settings;
    this.level = level;
  }

  private async run(messages: Buffer[], target: number, arrayMode = false): Promise<PgClientResult<unknown>> {
    const reply = await this.channel.send(this.sid, this.user, Buffer.concat(messages));
    return readReplies(reply, target, arrayMode);
  }

  async query<TData>(opts: PgClientQuery): Promise<PgClientResult<TData>> {
    const main = statement(opts.text, opts.values);
    // Outside an explicit transaction the settings ride in the same implicit transaction.
    const withSettings = this.level === 0 && this.settings !== null;
    const messages = withSettings ? [...statement(SET_SETTINGS, [this.settings]), ...main, SYNC] : [...main, SYNC];
    return (await this.run(messages, withSettings ? 1 : 0, opts.arrayMode)) as PgClientResult<TData>;
  }

  async withTransaction<T>(callback: (client: this) => Promise<T>): Promise<T> {
    const savepoint = `tx${this.level}`;
    if (this.level === 0) {
      const begin = [serialize.query('begin')];
      if (this.settings !== null) begin.push(...statement(SET_SETTINGS, [this.settings]), SYNC);
      await this.run(begin, -1);
    } else {
      await this.run([serialize.query(`savepoint ${savepoint}`)], -1);
    }
    const inner = new EngineClient(this.channel, this.sid, this.user, this.settings, this.level + 1) as this;
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

/** A `withPgClient` whose sessions log in as `user` over `channel`. */
export function makeEngineWithPgClient(channel: ChannelClient, user: string): WithPgClient<PgClient> {
  const free: number[] = [];
  let next = 1;
  let memberOf: Promise<Set<string>> | null = null;
  const rolesOf = (): Promise<Set<string>> =>
    (memberOf ??= new EngineClient(channel, 0, user, null)
      .query<{ rolname: string }>({ text: "select rolname from pg_roles where pg_has_role(current_user, oid, 'member')" })
      .then((r) => new Set(r.rows.map((row) => row.rolname)))
      .catch((err: unknown) => {
        memberOf = null;
        throw err;
      }));
  const withPgClient = async <T>(
    pgSettings: Record<string, string | undefined> | null,
    callback: (client: PgClient) => T | Promise<T>,
  ): Promise<T> => {
    const entries = Object.entries(pgSettings ?? {}).filter((e): e is [string, string] => e[1] != null);
    const role = pgSettings?.role;
    if (role != null && !(await rolesOf()).has(role)) {
      throw Object.assign(new Error(`permission denied to set role "${role}"`), { code: '42501' });
    }
    const sid = free.pop() ?? next++;
    try {
      return await callback(new EngineClient(channel, sid, user, entries.length ? JSON.stringify(entries) : null));
    } finally {
      free.push(sid);
    }
  };
  return withPgClient;
}

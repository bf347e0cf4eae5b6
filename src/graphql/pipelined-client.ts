// PostGraphile's `withPgClient` with one round trip per statement, on either
// backend. A query outside an explicit transaction goes as one pipelined
// batch, `set_config(role, claims…, local) ; query ; Sync`, which Postgres
// runs as one implicit transaction: the settings hold for that statement only,
// as `set local` in `begin … commit` would, without the three extra round
// trips (begin, set_config, commit) of PostGraphile's own pg adaptor. Explicit
// transactions (`withTransaction`) are `begin … commit` as usual.
//
// It speaks the Postgres protocol with node-postgres's own message
// serializer, parser and type parsers, so results are exactly what the `pg`
// adaptor returns. How batches travel is a Transport: the embedded engine's
// in-process channel (packages/pglite-server/src/channel-transport.ts) or a pg.Pool's
// connections to a server (poolTransport, below).
//
// The session logs in as the authenticator (NOINHERIT, no privileges of its
// own); the request's role comes from pgSettings, transaction-locally, so
// Postgres itself refuses a role the authenticator is not a member of.
import { serialize, type DatabaseError } from 'pg-protocol';
import pg from 'pg';
import Result from 'pg/lib/result.js';
import utils from 'pg/lib/utils.js';
import type { PgClient, PgClientQuery, PgClientResult, WithPgClient } from 'postgraphile/@dataplan/pg';
import { noPrepared, type BackendMessage, type Prepared, type Transport, type TransportSession } from '../database/transport.ts';

type Notice = NonNullable<PgClientResult<unknown>['notices']>[number];

const SET_SETTINGS = 'select set_config(el->>0, el->>1, true) from json_array_elements($1::json) el';
const SYNC = serialize.sync();

const prepareValue = (value: unknown): unknown => utils.prepareValue(value);

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
    if (key !== undefined && prepared.next <= prepared.max) {
      name = `q${prepared.next++}`;
      parsed.push([key, name]);
    } else {
      parsed.push(null);
    }
    out.push(serialize.parse({ text, ...(name ? { name } : {}) }));
  }
  out.push(serialize.bind({ statement: name ?? '', values: [...values], valueMapper: prepareValue }), serialize.describe({ type: 'P' }), serialize.execute());
  return out;
}

/**
 * Collects a batch's replies: the result of statement number `target`
 * (0-based), the first error, notices; records the statements that were
 * prepared.
 */
class Replies {
  private readonly result: InstanceType<typeof Result>;
  private readonly notices: Notice[] = [];
  private error: DatabaseError | null = null;
  private index = 0;
  private parses = 0;
  private readonly target: number;
  private readonly prepared: Prepared;
  private readonly parsed: Array<[string, string] | null>;

  constructor(target: number, arrayMode: boolean, prepared: Prepared, parsed: Array<[string, string] | null>) {
    this.result = new Result(arrayMode ? 'array' : undefined, pg.types);
    this.target = target;
    this.prepared = prepared;
    this.parsed = parsed;
  }

  readonly onMessage = (msg: BackendMessage): void => {
    const m = msg;
    const { result, target, index } = this;
    switch (m.name) {
      case 'parseComplete': {
        const named = this.parsed[this.parses++];
        if (named) this.prepared.names.set(named[0], named[1]);
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
        this.index++;
        break;
      case 'emptyQuery':
        this.index++;
        break;
      case 'error':
        this.error ??= msg as unknown as DatabaseError;
        break;
      case 'notice':
        this.notices.push(toNotice(msg as unknown as DatabaseError));
        break;
    }
  };

  outcome(): PgClientResult<unknown> {
    if (this.error) throw this.error;
    return { rows: this.result.rows, rowCount: this.result.rowCount, notices: this.notices };
  }
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

class PipelinedClient implements PgClient {
  private readonly session: TransportSession;
  private readonly settings: string | null;
  private readonly prepared: Prepared;
  /** 0: no explicit transaction; 1: in `begin`; 2…: savepoints. */
  private readonly level: number;

  constructor(session: TransportSession, settings: string | null, level = 0) {
    this.session = session;
    this.settings = settings;
    this.prepared = session.prepared;
    this.level = level;
  }

  private async run(messages: Buffer[], target: number, arrayMode = false, parsed: Array<[string, string] | null> = []): Promise<PgClientResult<unknown>> {
    const replies = new Replies(target, arrayMode, this.prepared, parsed);
    await this.session.run(Buffer.concat(messages), replies.onMessage);
    return replies.outcome();
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
      // One batch, one ReadyForQuery (a node-postgres connection ends a batch
      // at its first): begin and the settings both in the extended protocol.
      const parsed: Array<[string, string] | null> = [];
      const begin = statement(this.prepared, parsed, undefined, 'begin');
      if (this.settings !== null) begin.push(...this.settingsStatement(parsed));
      await this.run([...begin, SYNC], -1, false, parsed);
    } else {
      await this.run([serialize.query(`savepoint ${savepoint}`)], -1);
    }
    const inner = new PipelinedClient(this.session, this.settings, this.level + 1) as this;
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
 * A `withPgClient` over `transport`'s sessions, one round trip per statement.
 * `isRequest` says whether a call's pgSettings are a request's (the GraphQL
 * context made them): PostGraphile's introspection calls the same function
 * with its own settings, and is no request.
 */
export function makePipelinedWithPgClient(transport: Transport, isRequest?: (pgSettings: object | null) => boolean): WithPgClient<PgClient> {
  const withPgClient = async <T>(pgSettings: Record<string, string | undefined> | null, callback: (client: PgClient) => T | Promise<T>): Promise<T> => {
    const entries = Object.entries(pgSettings ?? {}).filter((e): e is [string, string] => e[1] != null);
    const session = await transport.session({ request: isRequest?.(pgSettings) ?? false });
    try {
      return await callback(new PipelinedClient(session, entries.length ? JSON.stringify(entries) : null));
    } finally {
      session.release();
    }
  };
  return withPgClient;
}

/**
 * Sessions on a server: a pool's connections. A batch is written to the
 * connection as it is and its replies handed on as node-postgres parses them
 * (a "submittable", the interface pg-cursor uses), ending at ReadyForQuery.
 */
export function poolTransport(pool: pg.Pool, options: { namedStatements?: boolean; busy?: Set<pg.PoolClient> } = {}): Transport {
  const preparedOf = new WeakMap<pg.PoolClient, Prepared>();
  // Behind PgBouncer in transaction mode (1.18) a connection's next transaction may run on
  // another server session, where a statement this one prepared does not exist.
  const max = options.namedStatements === false ? 0 : undefined;
  return {
    async session(opened) {
      const client = await pool.connect();
      // The connections this transport's sessions hold for requests, and only those (options.busy: the requests in progress).
      if (opened?.request) options.busy?.add(client);
      let prepared = preparedOf.get(client);
      if (!prepared) preparedOf.set(client, (prepared = noPrepared(max)));
      // A connection that failed under a batch is not given back to the pool.
      let broken: Error | undefined;
      // While a request has it the pool does not listen for its 'error' event:
      // node-postgres emits one when the connection ends under it (the server
      // terminating the backend: "Connection terminated unexpectedly"), and an
      // 'error' event without a listener ends the process. The batch in
      // progress fails by itself; this only marks the connection broken.
      const onError = (err: Error): void => {
        broken ??= err;
      };
      client.on('error', onError);
      return {
        prepared,
        run: async (batch, onMessage) => {
          try {
            const submitted = new Batch(batch, onMessage);
            await (client.query(submitted as unknown as pg.Submittable) as unknown as Promise<void>);
            // The server ended the session (FATAL): answered, but the connection is gone.
            if (submitted.fatal) broken ??= submitted.fatal;
          } catch (err) {
            broken = err as Error;
            throw err;
          }
        },
        release: () => {
          options.busy?.delete(client);
          client.off('error', onError);
          client.release(broken);
        },
      };
    },
  };
}

interface PgConnection {
  stream: { write(data: Buffer): unknown };
  on(event: string, listener: (msg: unknown) => void): unknown;
  off(event: string, listener: (msg: unknown) => void): unknown;
}

/** One batch on a node-postgres client (its `Submittable` interface). */
class Batch {
  private readonly batch: Buffer;
  private readonly onMessage: (msg: BackendMessage) => void;
  private connection: PgConnection | null = null;
  private settle!: (err?: Error) => void;
  private readonly done: Promise<void>;
  // node-postgres calls `callback` when the submittable is done, if it has one.
  readonly callback = undefined;
  /** The server's FATAL (or PANIC) error, if it ended the session under this batch (pg_terminate_backend, a shutdown). */
  fatal: Error | null = null;

  constructor(batch: Buffer, onMessage: (msg: BackendMessage) => void) {
    this.batch = batch;
    this.onMessage = onMessage;
    this.done = new Promise((resolve, reject) => (this.settle = (err) => (err ? reject(err) : resolve())));
  }

  // (pg passes these to client.query's promise through `then` on the submittable.)
  then<T>(resolve: (v: void) => T, reject?: (e: Error) => T): Promise<T> {
    return this.done.then(resolve, reject);
  }

  // parseComplete and notices reach the connection, not the submittable.
  private readonly parseComplete = (): void => this.onMessage({ name: 'parseComplete' });
  private readonly notice = (msg: unknown): void => this.onMessage(msg as BackendMessage);

  submit(connection: PgConnection): void {
    this.connection = connection;
    connection.on('parseComplete', this.parseComplete);
    connection.on('notice', this.notice);
    connection.stream.write(this.batch);
  }

  private detach(): void {
    this.connection?.off('parseComplete', this.parseComplete);
    this.connection?.off('notice', this.notice);
    this.connection = null;
  }

  handleRowDescription(msg: BackendMessage): void {
    this.onMessage(msg);
  }
  handleDataRow(msg: BackendMessage): void {
    this.onMessage(msg);
  }
  handleCommandComplete(msg: BackendMessage): void {
    this.onMessage(msg);
  }
  handleEmptyQuery(): void {
    this.onMessage({ name: 'emptyQuery' });
  }
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
  handleError(err: Error): void {
    // node-postgres detaches the submittable at an error; the batch's ReadyForQuery follows unseen.
    this.detach();
    // A Postgres ErrorResponse (pg-protocol names it 'error') is the batch's answer; anything else (the connection failing) fails the batch.
    if (err.name === 'error') {
      const severity = (err as Error & { severity?: string }).severity;
      if (severity === 'FATAL' || severity === 'PANIC') this.fatal = err;
      this.onMessage(err as unknown as BackendMessage);
      this.settle();
    } else {
      this.settle(err);
    }
  }
  handleReadyForQuery(): void {
    this.detach();
    this.settle();
  }
}

// The few pieces of the PostgreSQL v3 wire protocol that the embedded
// front-end speaks itself (start-up, authentication, errors). Everything after
// authentication is forwarded to PGlite unchanged, apart from statement names.

export const PROTOCOL_3 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

/** A framed message: a type byte followed by an int32 length that counts itself. */
export function message(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstring = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');

const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

export const authenticationOk = (): Buffer => message('R', int32(0));
export const authenticationCleartextPassword = (): Buffer => message('R', int32(3));
export const parameterStatus = (name: string, value: string): Buffer => message('S', Buffer.concat([cstring(name), cstring(value)]));
export const backendKeyData = (pid: number, key: number): Buffer => message('K', Buffer.concat([int32(pid), int32(key)]));
export const readyForQuery = (status: 'I' | 'T' | 'E'): Buffer => message('Z', Buffer.from(status, 'latin1'));
export const commandComplete = (tag: string): Buffer => message('C', cstring(tag));

export function errorResponse(severity: 'ERROR' | 'FATAL', code: string, text: string): Buffer {
  return message(
    'E',
    Buffer.concat([
      Buffer.from('S', 'latin1'),
      cstring(severity),
      Buffer.from('V', 'latin1'),
      cstring(severity),
      Buffer.from('C', 'latin1'),
      cstring(code),
      Buffer.from('M', 'latin1'),
      cstring(text),
      Buffer.from([0]),
    ]),
  );
}

/** Parses the key/value pairs of a StartupMessage body (after length and protocol). */
export function startupParameters(body: Buffer): Record<string, string> {
  const parts = body.toString('utf8').split('\0');
  const params: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) {
    if (!parts[i]) break;
    params[parts[i]!] = parts[i + 1]!;
  }
  return params;
}

/** Reads a NUL-terminated string at `offset`; returns it and the offset after the NUL. */
export function readCString(buf: Buffer, offset: number): [string, number] {
  const end = buf.indexOf(0, offset);
  if (end < 0) throw new Error('malformed protocol message: unterminated string');
  return [buf.toString('utf8', offset, end), end + 1];
}

/**
 * Splits complete frontend messages off the front of `buf`.
 * Returns the messages and whatever incomplete tail remains.
 */
export function splitMessages(buf: Buffer): [Buffer[], Buffer] {
  const out: Buffer[] = [];
  let offset = 0;
  while (buf.length - offset >= 5) {
    const len = buf.readInt32BE(offset + 1);
    if (len < 4) throw new Error(`malformed protocol message: length ${len}`);
    if (buf.length - offset < len + 1) break;
    out.push(buf.subarray(offset, offset + len + 1));
    offset += len + 1;
  }
  return [out, buf.subarray(offset)];
}

/**
 * Gives each client its own namespace of prepared statements and portals by
 * prefixing every non-empty name in Parse/Bind/Describe/Close/Execute. On a
 * real server names are per connection; here all clients share one backend.
 */
export function namespaceMessage(msg: Buffer, prefix: string): { msg: Buffer; parsedStatement?: string } {
  const type = String.fromCharCode(msg[0]!);
  const body = msg.subarray(5);
  const ns = (name: string): string => (name === '' ? '' : prefix + name);
  switch (type) {
    case 'P': {
      const [name, rest] = readCString(body, 0);
      if (name === '') return { msg };
      return { msg: message('P', Buffer.concat([cstring(ns(name)), body.subarray(rest)])), parsedStatement: ns(name) };
    }
    // Portals keep their names: a portal never outlives its client's hold on
    // the backend (it ends with its transaction, and a WITH HOLD cursor keeps
    // the backend with its client), and a cursor DECLAREd in SQL is a portal
    // that drivers (psycopg 3) then describe and fetch by its SQL name.
    case 'B': {
      const [portal, afterPortal] = readCString(body, 0);
      const [stmt, afterStmt] = readCString(body, afterPortal);
      if (stmt === '') return { msg };
      return { msg: message('B', Buffer.concat([cstring(portal), cstring(ns(stmt)), body.subarray(afterStmt)])) };
    }
    case 'D':
    case 'C': {
      const kind = body.subarray(0, 1);
      const [name, rest] = readCString(body, 1);
      if (name === '' || kind.toString() === 'P') return { msg };
      return { msg: message(type, Buffer.concat([kind, cstring(ns(name)), body.subarray(rest)])) };
    }
    default:
      return { msg };
  }
}

/** The SQL text carried by a Query or Parse message, if any. */
export function sqlText(msg: Buffer): string | undefined {
  const type = String.fromCharCode(msg[0]!);
  const body = msg.subarray(5);
  if (type === 'Q') return readCString(body, 0)[0];
  if (type === 'P') {
    const [, afterName] = readCString(body, 0);
    return readCString(body, afterName)[0];
  }
  return undefined;
}

/** A one-column text result: RowDescription, DataRow, CommandComplete. */
export function singleTextRow(column: string, value: string): Buffer {
  const field = Buffer.alloc(18);
  field.writeInt32BE(0, 0); // table oid
  field.writeInt16BE(0, 4); // column number
  field.writeInt32BE(25, 6); // type oid: text
  field.writeInt16BE(-1, 10); // type size
  field.writeInt32BE(-1, 12); // type modifier
  field.writeInt16BE(0, 16); // text format
  const count = Buffer.alloc(2);
  count.writeInt16BE(1);
  const data = Buffer.from(value, 'utf8');
  return Buffer.concat([
    message('T', Buffer.concat([count, cstring(column), field])),
    message('D', Buffer.concat([count, int32(data.length), data])),
    commandComplete('SELECT 1'),
  ]);
}

/**
 * Frames as they arrive in chunks: each frame's bytes are joined once, when
 * the frame is whole, so a large message costs its size, not its size squared
 * (re-concatenating a growing buffer on every chunk did). Lengths are checked
 * against a cap before anything is buffered past it.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private total = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  get buffered(): number {
    return this.total;
  }

  /** The first `n` bytes, without consuming them (null when fewer have arrived). */
  private peek(n: number): Buffer | null {
    if (this.total < n) return null;
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const parts: Buffer[] = [];
      let need = n;
      while (need > 0) {
        const c = this.chunks[0]!;
        if (c.length <= need) {
          parts.push(c);
          this.chunks.shift();
          need -= c.length;
        } else {
          parts.push(c.subarray(0, need));
          this.chunks[0] = c.subarray(need);
          need = 0;
        }
      }
      out = Buffer.concat(parts, n);
    }
    this.total -= n;
    return out;
  }

  /** A startup-phase frame (int32 length, then the rest); throws on a length outside 8…max. */
  nextStartup(max: number): Buffer | null {
    const head = this.peek(4);
    if (!head) return null;
    const len = head.readInt32BE(0);
    if (len < 8 || len > max) throw new ProtocolError('08P01', `invalid length of startup packet: ${len} bytes (at least 8, at most ${max})`);
    return this.total >= len ? this.take(len) : null;
  }

  /** A regular frame (type byte, int32 length, body); throws on a length outside 4…max. */
  nextMessage(max: number): Buffer | null {
    const head = this.peek(5);
    if (!head) return null;
    const len = head.readInt32BE(1);
    if (len < 4 || len > max) {
      throw new ProtocolError('08P01', `invalid length of message '${String.fromCharCode(head[0]!)}': ${len} bytes (at least 4, at most ${max})`);
    }
    return this.total >= len + 1 ? this.take(len + 1) : null;
  }
}

/** A client broke the protocol: answered with an ErrorResponse of this code, then the connection is closed. */
export class ProtocolError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * Passes backend output through message by message, letting `take` keep
 * some messages back (it returns true for those). Once `take` says it wants
 * no more (`finished`), bytes pass straight through.
 */
export class ReplyFilter {
  private pending: Buffer = Buffer.alloc(0);
  private readonly take: (msg: Buffer) => boolean;
  private readonly finished: () => boolean;

  constructor(take: (msg: Buffer) => boolean, finished: () => boolean = () => false) {
    this.take = take;
    this.finished = finished;
  }

  /** The bytes of `data` to send on now (a message split across outputs is held until whole). */
  push(data: Buffer): Buffer {
    if (this.pending.length === 0 && this.finished()) return data;
    this.pending = this.pending.length ? Buffer.concat([this.pending, data]) : data;
    const out: Buffer[] = [];
    let at = 0;
    while (at + 5 <= this.pending.length) {
      if (this.finished()) break;
      const end = at + 1 + this.pending.readInt32BE(at + 1);
      if (end > this.pending.length) break;
      const msg = this.pending.subarray(at, end);
      if (!this.take(msg)) out.push(msg);
      at = end;
    }
    if (this.finished()) {
      out.push(this.pending.subarray(at));
      this.pending = Buffer.alloc(0);
    } else {
      this.pending = Buffer.from(this.pending.subarray(at));
    }
    return Buffer.concat(out);
  }

  /** Whatever is still held (output ends on a message boundary, so normally nothing). */
  flush(): Buffer {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return rest;
  }
}

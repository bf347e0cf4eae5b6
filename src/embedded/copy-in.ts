// COPY … FROM STDIN on a backend that cannot wait for input.
//
// PGlite runs one protocol call at a time over a buffer it is handed whole:
// when COPY FROM STDIN reaches the end of that buffer it does not wait for
// more, it exits (the instance is lost). A real server's backend blocks on the
// socket instead. So the engine does what the backend cannot: it recognises a
// COPY FROM STDIN before running it, answers CopyInResponse itself, collects
// the client's CopyData up to CopyDone or CopyFail (bounded), and then hands
// PGlite the command and its data in one call, dropping PGlite's own
// CopyInResponse from the reply.
//
// Recognising the command needs the statement's first keyword and its
// `FROM STDIN`, outside quotes, comments and parentheses: this is a framing
// decision (where the client's data goes), never a security one.
import * as wire from './wire.ts';

export interface CopyInPlan {
  /** How many statements of the text are COPY … FROM STDIN. */
  count: number;
  /** The (first) one is in binary format. */
  binary: boolean;
}

/** The words of each statement of `sql` at parenthesis depth 0, lower-cased; quoted text and comments removed. */
function statementWords(sql: string): string[][] {
  const statements: string[][] = [[]];
  let depth = 0;
  let i = 0;
  const n = sql.length;
  const current = (): string[] => statements[statements.length - 1]!;
  while (i < n) {
    const c = sql[i]!;
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      let nest = 1;
      i += 2;
      while (i < n && nest > 0) {
        const pair = sql.slice(i, i + 2);
        if (pair === '/*' || pair === '*/') {
          nest += pair === '/*' ? 1 : -1;
          i += 2;
        } else {
          i++;
        }
      }
    } else if (c === "'" || c === '"') {
      // A string (E'…' escapes backslashes) or a quoted identifier; a doubled quote stays inside.
      const escapes = c === "'" && /[eE]/.test(sql[i - 1] ?? '') && !/[\w$]/.test(sql[i - 2] ?? '');
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === c && sql[i + 1] === c) i += 2;
        else if (sql[i] === c) break;
        else i++;
      }
      i++;
      if (c === '"') current().push('"');
    } else if (c === '$' && /^\$(?:[A-Za-z_][\w]*)?\$/.test(sql.slice(i, i + 64)) && !/[\w$]/.test(sql[i - 1] ?? '')) {
      const tag = /^\$(?:[A-Za-z_][\w]*)?\$/.exec(sql.slice(i, i + 64))![0];
      const end = sql.indexOf(tag, i + tag.length);
      i = end < 0 ? n : end + tag.length;
    } else if (c === '(') {
      depth++;
      i++;
    } else if (c === ')') {
      depth = Math.max(0, depth - 1);
      i++;
    } else if (c === ';') {
      statements.push([]);
      depth = 0;
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      const start = i;
      while (i < n && /[\w$]/.test(sql[i]!)) i++;
      if (depth === 0) current().push(sql.slice(start, i).toLowerCase());
      else if (sql.slice(start, i).toLowerCase() === 'binary') current().push('binary');
    } else {
      i++;
    }
  }
  return statements.filter((s) => s.length > 0);
}

/** Which statements of a Query (or Parse) text are COPY … FROM STDIN. */
export function copyFromStdin(sql: string): CopyInPlan {
  let count = 0;
  if (!/copy/i.test(sql)) return { count, binary: false }; // the common case, without lexing
  let binary = false;
  for (const words of statementWords(sql)) {
    if (words[0] !== 'copy') continue;
    const from = words.indexOf('from');
    if (from < 0 || words[from + 1] !== 'stdin') continue;
    if (count === 0) binary = words.includes('binary');
    count++;
  }
  return { count, binary };
}

/** CopyInResponse as the engine sends it before it has run the command (column formats unknown: none listed). */
export function copyInResponse(binary: boolean): Buffer {
  const body = Buffer.alloc(3);
  body.writeInt8(binary ? 1 : 0, 0);
  body.writeInt16BE(0, 1);
  return wire.message('G', body);
}

/**
 * Passes a reply through, message by message, leaving out its first
 * CopyInResponse (the client already has the engine's).
 */
export class CopyInResponseFilter {
  private pending: Buffer = Buffer.alloc(0);
  private dropped = false;

  /** The bytes of `data` to send on (possibly held back until a message is whole). */
  push(data: Buffer): Buffer {
    if (this.dropped) return data;
    this.pending = this.pending.length ? Buffer.concat([this.pending, data]) : data;
    const out: Buffer[] = [];
    let at = 0;
    while (!this.dropped && at + 5 <= this.pending.length) {
      const end = at + 1 + this.pending.readInt32BE(at + 1);
      if (end > this.pending.length) break;
      if (this.pending[at] === 0x47) this.dropped = true;
      else out.push(this.pending.subarray(at, end));
      at = end;
    }
    if (this.dropped) out.push(this.pending.subarray(at));
    this.pending = this.dropped ? Buffer.alloc(0) : Buffer.from(this.pending.subarray(at));
    return Buffer.concat(out);
  }

  /** Whatever was held back (a reply without CopyInResponse ends whole). */
  flush(): Buffer {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return rest;
  }
}

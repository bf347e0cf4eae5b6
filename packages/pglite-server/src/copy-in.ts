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
import { sqlStatements } from './sql-lexer.ts';

export interface CopyInPlan {
  /** How many statements of the text are COPY … FROM STDIN. */
  count: number;
  /** The (first) one is in binary format. */
  binary: boolean;
}

/** Which statements of a Query (or Parse) text are COPY … FROM STDIN. */
export function copyFromStdin(sql: string): CopyInPlan {
  let count = 0;
  if (!/copy/i.test(sql)) return { count, binary: false }; // the common case, without lexing
  let binary = false;
  for (const { words } of sqlStatements(sql)) {
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

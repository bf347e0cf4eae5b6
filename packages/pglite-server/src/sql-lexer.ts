// A small lexer for query strings: where statements end and what their
// leading words are, skipping quoted text, comments and dollar quoting. The
// engine uses it for framing and bookkeeping only (which statement is a COPY
// FROM STDIN, which part of a query string created a prepared statement,
// which channel a LISTEN names),
// never to decide what a client may do.

export interface SqlStatement {
  /** Its source text (without the `;`). */
  text: string;
  /** Where it starts in the query string (0-based, after leading whitespace). */
  offset: number;
  /**
   * Its words at parenthesis depth 0: lower-cased, or for a quoted identifier
   * `"` and its exact name; `binary` is kept at any depth.
   */
  words: string[];
}

/** The statements of a query string, split at `;` outside quotes, comments and dollar quoting. */
export function sqlStatements(sql: string): SqlStatement[] {
  const statements: SqlStatement[] = [];
  let words: string[] = [];
  let from = 0;
  const end = (at: number): void => {
    const raw = sql.slice(from, at);
    if (words.length > 0) statements.push({ text: raw.trim(), offset: from + (raw.length - raw.trimStart().length), words });
    words = [];
    from = at + 1;
  };
  let depth = 0;
  let i = 0;
  const n = sql.length;
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
      const start = i;
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === c && sql[i + 1] === c) i += 2;
        else if (sql[i] === c) break;
        else i++;
      }
      i++;
      if (c === '"' && depth === 0) words.push(`"${sql.slice(start + 1, i - 1).replace(/""/g, '"')}`);
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
      end(i);
      depth = 0;
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      const start = i;
      while (i < n && /[\w$]/.test(sql[i]!)) i++;
      if (depth === 0) words.push(sql.slice(start, i).toLowerCase());
      else if (sql.slice(start, i).toLowerCase() === 'binary') words.push('binary');
    } else {
      i++;
    }
  }
  end(n);
  return statements;
}

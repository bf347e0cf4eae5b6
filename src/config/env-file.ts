// The `.env` file, read strictly: dotenv skips a line it cannot read (say
// `JWT_SECRET abc`, or a pasted YAML block) without a word, and the gateway
// then runs without the setting the line meant to give. Every line must be
// blank, a comment, or `KEY=value` (`export KEY=value` too, as dotenv
// accepts); a quoted value may span lines as dotenv reads it. The first other
// line is reported by its number, never by its text (it may hold a secret).
import { readFileSync } from 'node:fs';

const ASSIGNMENT = /^\s*(?:export\s+)?[\w.-]+\s*=(.*)$/;
const QUOTES = new Set(["'", '"', '`']);

/** Where `value`'s opening quote closes on this line (-1 when it does not); a quote after a backslash does not close it. */
function closingQuote(text: string, quote: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '\\' && text[i + 1] === quote) i++;
    else if (text[i] === quote) return i;
  }
  return -1;
}

/** The first line of `text` that is not blank, a comment or KEY=value: its number (1-based) and a reason; undefined when all are. */
export function envTextProblem(text: string): { line: number; reason: string } | undefined {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const match = ASSIGNMENT.exec(line);
    if (!match) {
      const name = /^\s*(?:export\s+)?([\w.-]+)/.exec(line)?.[1];
      const reason =
        name && /^\s*(?:export\s+)?[\w.-]+\s*:/.test(line) ? `"${name}:" is not KEY=value (write ${name}=…)` : 'not KEY=value (comments start with #)';
      return { line: i + 1, reason };
    }
    // A quoted value that does not close on its line goes on until the line
    // that closes it (dotenv's multi-line values); unclosed to the end of the
    // file, dotenv reads it as a plain one-line value, and so does this.
    const value = match[1]!.trimStart();
    const quote = value[0];
    if (quote === undefined || !QUOTES.has(quote) || closingQuote(value, quote, 1) >= 0) continue;
    for (let j = i + 1; j < lines.length; j++) {
      if (closingQuote(lines[j]!, quote, 0) >= 0) {
        i = j;
        break;
      }
    }
  }
  return undefined;
}

/** The problem with the `.env` file at `file` as one line naming the file and the line, or undefined (a missing file is fine). */
export function envFileProblem(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return `${file} cannot be read: ${(err as Error).message}`;
  }
  const problem = envTextProblem(text);
  return problem && `${file} line ${problem.line}: ${problem.reason}`;
}

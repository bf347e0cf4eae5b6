// The settings a client sends at connection time, as a server takes them:
// every start-up parameter but the protocol's own (user, database,
// replication, `_pq_.*`) names a setting (TimeZone, DateStyle,
// client_encoding, extra_float_digits, search_path, application_name, …),
// and `options` carries more as command-line switches (`-c name=value` or
// `--name=value`, split on spaces, a backslash escaping the next character),
// as PGOPTIONS and libpq's `options` send them. They apply on top of ALTER
// ROLE / ALTER DATABASE … SET, in the order sent, options last as on a server.
// pg-cluster.ts checks them against Postgres itself before the login
// succeeds (an unknown name or a bad value is refused with Postgres's own
// error) and makes them the session's own state, which the engine restores
// whenever the backend comes back to the session.
import type { PGlite } from '@electric-sql/pglite';

/** Start-up parameters that are not settings. */
const PROTOCOL_PARAMETERS = new Set(['user', 'database', 'options', 'replication']);

/** A refusal with the SQLSTATE and message Postgres gives. */
export class StartupSettingError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** pg_split_opts: words split on unescaped whitespace, `\x` standing for x. */
function splitOptions(options: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      inWord = true;
      if (ch === '\\' && i + 1 < options.length) word += options[++i]!;
      else word += ch;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** `name=value` as a setting (dashes in the name are underscores, as ParseLongOption makes them). */
function nameValue(arg: string, switchName: '-c ' | '--'): [string, string] {
  const at = arg.indexOf('=');
  if (at < 0) throw new StartupSettingError('42601', `${switchName}${arg} requires a value`);
  return [arg.slice(0, at).replace(/-/g, '_'), arg.slice(at + 1)];
}

/** The settings of a start-up packet, in the order a server applies them. */
export function startupSettings(params: Record<string, string>): Array<[string, string]> {
  const settings: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(params)) {
    if (PROTOCOL_PARAMETERS.has(name) || name.startsWith('_pq_.')) continue;
    settings.push([name, value]);
  }
  const words = splitOptions(params.options ?? '');
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '-c' && i + 1 < words.length) {
      settings.push(nameValue(words[++i]!, '-c '));
    } else if (word.startsWith('-c') && word.length > 2) {
      settings.push(nameValue(word.slice(2), '-c '));
    } else if (word.startsWith('--') && word.length > 2) {
      settings.push(nameValue(word.slice(2), '--'));
    } else {
      // The other switches of a server process (-B, -F, …) concern the server, not a session.
      throw new StartupSettingError('42601', `invalid command-line argument for server process: ${word}`);
    }
  }
  return settings;
}

/** The settings a server reports to a client at login (GUC_REPORT), read from the session. */
export const REPORTED = ['client_encoding', 'DateStyle', 'TimeZone', 'IntervalStyle', 'application_name'] as const;

/**
 * Applies `settings` for `user` in a transaction that is rolled back (the
 * backend is the caller's alone, as the superuser): Postgres itself refuses an
 * unknown name, a bad value or a setting the login may not make, with its
 * own error. Returns the values the session will have of what a server
 * reports at login.
 */
export async function checkStartupSettings(db: PGlite, user: string, settings: Array<[string, string]>): Promise<Record<string, string>> {
  await db.exec('begin');
  try {
    const who = await db.query<{ q: string }>('select quote_ident($1) as q', [user]);
    await db.exec(`set local session authorization ${who.rows[0]!.q}`);
    for (const [name, value] of settings) {
      try {
        await db.query('select set_config($1, $2, true)', [name, value]);
      } catch (err) {
        const e = err as { code?: string; message: string };
        throw new StartupSettingError(e.code ?? '22023', e.message);
      }
    }
    const res = await db.query<Record<string, string>>(`select ${REPORTED.map((n, i) => `current_setting('${n}') as s${i}`).join(', ')}`);
    const row = res.rows[0]!;
    return Object.fromEntries(REPORTED.map((n, i) => [n, row[`s${i}`]!]));
  } finally {
    await db.exec('rollback');
    await db.exec('set session authorization postgres');
  }
}

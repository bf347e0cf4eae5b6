// Loaded into graphile-migrate's own CLI (`npx graphile-migrate …`) through
// NODE_OPTIONS, which `eval "$(npm run -s db:env)"` exports; in every other
// node process it does nothing. Two jobs, both for its `watch`:
// - on the embedded engine, refuse it in one line with exit code 1. It holds
//   graphile_migrate.current locked in a transaction on one connection while
//   it runs current.sql on a second, which the engine's one backend cannot
//   serve: the engine ended the first connection (SQLSTATE 55P03,
//   src/embedded/pg-server.ts), and the pg client, idle at that moment with no error
//   listener, ended the process with an unhandled 'error' event and about 40
//   lines of stack. It is refused before it connects; should the engine's
//   error still come (the connection string reached it another way), it is
//   that line;
// - on a server, claim current.sql for the database as `npm run dev` and
//   `npm run db:watch` do (current-owner.ts: a session advisory
//   lock, held for the process's life, its connection named after it), so
//   that one process applies current.sql on every save: a second is refused
//   in one line naming the first.
// Plain JavaScript: it runs in whatever node runs graphile-migrate.
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';

const ENGINE_REFUSAL = /^graphile-migrate watch cannot run on the embedded engine/;

/** What graphile-migrate's watch is told instead, on one line. */
export const WATCH_REFUSAL =
  'graphile-migrate watch cannot run on the embedded engine: it holds a lock on one connection while it runs current.sql on a second, ' +
  'and the engine has one backend; use `npm run db:watch` (or `npm run dev`, which also serves the API), which do the same steps on one connection';

function scriptPath() {
  try {
    return realpathSync(process.argv[1] ?? '');
  } catch {
    return '';
  }
}

/** current-owner.ts's advisory lock keys and its holder's connection name. */
const LOCK_KEYS = [734520, 1];
const HOLDER_NAME = /^sheratan (.+) pid (\d+)$/;

/** Claims current.sql on `url` for this process's life, or says who has it (one line) and exits 1. */
async function claimCurrentSql(url, script) {
  // graphile-migrate's own pg (this file's folder may not resolve it, e.g. in an installed package).
  const pg = createRequire(script)('pg');
  const purpose = 'npx graphile-migrate watch';
  const client = new pg.Client({ connectionString: url, application_name: `sheratan ${purpose} pid ${process.pid}` });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch {
    return; // graphile-migrate connects next and says what is wrong
  }
  const { rows } = await client.query('select pg_try_advisory_lock($1, $2) as claimed', LOCK_KEYS);
  if (rows[0].claimed) {
    // Held until the process ends; the open connection does not keep graphile-migrate from exiting.
    client.connection.stream.unref?.();
    return;
  }
  const held = await client.query(
    `select a.application_name as name, a.pid
       from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.classid = $1 and l.objid = $2 and l.objsubid = 2
        and l.database = (select oid from pg_database where datname = current_database())`,
    LOCK_KEYS,
  );
  const named = HOLDER_NAME.exec(held.rows[0]?.name ?? '');
  const holder = named ? `process ${named[2]} (${named[1]})` : 'another session';
  process.stderr.write(
    `${purpose}: migrations/current.sql is already applied on every save to this database by ${holder}; ` +
      'one process applies it at a time: stop that one first, or keep using it\n',
  );
  process.exit(1);
}

/** graphile-migrate's command: the first argument that is neither an option nor an option's value. */
function commandOf(args) {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '-c' || arg === '--config') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

const script = scriptPath();
if (/[\\/]graphile-migrate[\\/]dist[\\/]cli\.js$/.test(script)) {
  const args = process.argv.slice(2);
  const embedded = process.env.SHERATAN_EMBEDDED_DATABASE_URL;
  const url = process.env.DATABASE_URL;
  if (commandOf(args) === 'watch' && url) {
    if (url === embedded) {
      process.stderr.write(`${WATCH_REFUSAL}\n`);
      process.exit(1);
    }
    // A watch that runs current.sql again on every save (not --once), on this database (not the shadow).
    if (!args.includes('--once') && !args.includes('--shadow')) await claimCurrentSql(url, script);
  }
  process.on('uncaughtException', (err) => {
    if (err && err.code === '55P03' && ENGINE_REFUSAL.test(err.message)) process.stderr.write(`${WATCH_REFUSAL}\n`);
    else process.stderr.write(`${err && err.stack ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}

// Loaded into graphile-migrate's own CLI (`npx graphile-migrate …`) through
// NODE_OPTIONS, which `eval "$(npm run -s db:env)"` exports for the embedded
// engine; in every other node process it does nothing. graphile-migrate's
// `watch` holds graphile_migrate.current locked in a transaction on one
// connection while it runs current.sql on a second, which the engine's one
// backend cannot serve: the engine ended the first connection (SQLSTATE
// 55P03, pg-server.ts), and the pg client, idle at that moment with no error
// listener, ended the process with an unhandled 'error' event and about 40
// lines of stack. Here `watch` on the embedded database is refused before it
// connects, with one line and exit code 1; and should the engine's error
// still come (the connection string reached it another way), it is that line.
// Plain JavaScript: it runs in whatever node runs graphile-migrate.
import { realpathSync } from 'node:fs';

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

/** graphile-migrate's command: the first argument that is neither an option nor an option's value. */
function commandOf(args) {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '-c' || arg === '--config') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

if (/[\\/]graphile-migrate[\\/]dist[\\/]cli\.js$/.test(scriptPath())) {
  const embedded = process.env.SHERATAN_EMBEDDED_DATABASE_URL;
  if (commandOf(process.argv.slice(2)) === 'watch' && embedded && process.env.DATABASE_URL === embedded) {
    process.stderr.write(`${WATCH_REFUSAL}\n`);
    process.exit(1);
  }
  process.on('uncaughtException', (err) => {
    if (err && err.code === '55P03' && ENGINE_REFUSAL.test(err.message)) process.stderr.write(`${WATCH_REFUSAL}\n`);
    else process.stderr.write(`${err && err.stack ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}

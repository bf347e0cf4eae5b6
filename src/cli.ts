// Entry point of the `sheratan` CLI. Grafast reads GRAPHILE_ENV when it is
// first imported, so it is settled here before anything else loads.
process.env.GRAPHILE_ENV ??= process.env.NODE_ENV === 'production' ? 'production' : 'development';
const { runCommand } = await import('./commands/registry.ts');

runCommand(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // One line for people; the stack with LOG_LEVEL=debug.
    const debug = process.env.LOG_LEVEL === 'debug';
    process.stderr.write(`sheratan: ${err instanceof Error ? (debug ? (err.stack ?? err.message) : err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);

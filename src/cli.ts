// Entry point of the `sheratan` CLI. Grafast reads GRAPHILE_ENV when it is
// first imported, so it is settled here before anything else loads.
process.env.GRAPHILE_ENV ??= process.env.NODE_ENV === 'production' ? 'production' : 'development';
await import('./commands/commands.ts');

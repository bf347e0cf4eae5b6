// Evidence that a statement used an index, read from the statements users
// run: pg_stat_user_indexes.idx_scan of the named index before and after
// real requests. No planner setting is changed and no SQL is copied: whatever
// the request executed (its function's dynamic SQL, its cached generic plan,
// under RLS as the caller) is what moves the counter.
// A backend publishes its counts to shared statistics when it goes idle, at
// most once a second (PostgreSQL 15; otherwise within 10 s); so the count is
// polled until it moves or a deadline passes, never read after a fixed sleep.
// PGlite's one backend publishes them the same way (checked by the tests that
// use this on the embedded engine: the count does move there).
import type pg from 'pg';

/** idx_scan of `index` (in schema sheratan) as the shared statistics have it now. */
export async function indexScans(client: pg.ClientBase, index: string): Promise<number> {
  const { rows } = await client.query<{ n: string | null }>(
    "select idx_scan::text as n from pg_stat_user_indexes where schemaname = 'sheratan' and indexrelname = $1",
    [index],
  );
  if (!rows[0]) throw new Error(`no index sheratan.${index}`);
  return Number(rows[0].n ?? 0);
}

/**
 * Runs `requests`, then waits until idx_scan of `index` has grown by at least
 * `atLeast` (or `deadlineMs` passed) and returns by how much: 0 means the
 * requests never used the index.
 */
export async function indexScansDuring(
  client: pg.ClientBase,
  index: string,
  requests: () => Promise<unknown>,
  { atLeast = 1, deadlineMs = 30_000 }: { atLeast?: number; deadlineMs?: number } = {},
): Promise<number> {
  const before = await indexScans(client, index);
  await requests();
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const delta = (await indexScans(client, index)) - before;
    if (delta >= atLeast || Date.now() > deadline) return delta;
    await new Promise((r) => setTimeout(r, 100));
  }
}

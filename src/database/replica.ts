// How far a read replica (READ_DATABASE_URL) is behind its primary, for
// /metrics and doctor: the primary's current WAL position against the
// replica's replayed one, in bytes (0: everything written is readable there).
// Bytes rather than seconds: pg_last_xact_replay_timestamp() grows while the
// primary is idle, when nothing is missing.

/** Anything with node-postgres's query (a pool or a client). */
interface Queryable {
  query<R extends object>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

export type ReplicaState = { standby: true; lagBytes: number } | { standby: false };

/** The replica's state; rejects when either side cannot be reached. */
export async function replicaLag(primary: Queryable, replica: Queryable): Promise<ReplicaState> {
  const [p] = (await primary.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows;
  const [r] = (
    await replica.query<{ standby: boolean; lag: string | null }>(
      'select pg_is_in_recovery() as standby, pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::text as lag',
      [p!.lsn],
    )
  ).rows;
  if (!r!.standby) return { standby: false };
  // A replica that has replayed past what the primary reported a moment before is not behind.
  return { standby: true, lagBytes: Math.max(0, Number(r!.lag ?? 0)) };
}

// What every doctor check shares: the line it prints (Check), the unit that
// makes it (DoctorCheck), and what a check is run with (DoctorContext): the
// owner's connection, the configuration, the database, and the catalog facts
// several checks read, each queried once per run.
import type pg from 'pg';
import type { Config } from '../../config/config.ts';
import type { Database } from '../../database/connect.ts';
import { describeAnnIndex, type AnnIndex, ANN_INDEX } from '../../database/ann-index.ts';
import { embeddingColumns } from '../../database/vector-column.ts';

export type Status = 'ok' | 'warn' | 'fail';
export interface Check {
  name: string;
  status: Status;
  detail: string;
  fix?: string;
}

/** What every check is run with. */
export interface DoctorSettings {
  config: Config;
  db: Database;
}

/** An index of schema sheratan, with its access method and scans since statistics were reset. */
export interface IndexRow {
  name: string;
  method: string;
  scans: string | null;
}

/** What the checks on doctor's connection are run with: the owner's connection and the facts several of them read. */
export interface DoctorContext extends DoctorSettings {
  client: pg.Client;
  /** The tables of schema sheratan. */
  tables(): Promise<string[]>;
  /** The live embedding column's dimension, or null without the column. */
  embeddingDimension(): Promise<number | null>;
  /** The indexes of schema sheratan. */
  indexes(): Promise<IndexRow[]>;
  /** The ANN index as describeAnnIndex reads it, or null when there is no index named ANN_INDEX. */
  annIndex(): Promise<AnnIndex | null>;
}

/**
 * One named check with one job. Most run on doctor's owner connection, in
 * the order of DOCTOR_CHECKS, and doctor stops walking those at the first
 * that throws; one with `afterConnection` runs once that connection is
 * closed, whatever happened on it (the migrations check: graphile-migrate
 * connects by itself).
 */
export type DoctorCheck =
  | { name: string; afterConnection?: false; run(ctx: DoctorContext): Promise<Check | Check[]> }
  | { name: string; afterConnection: true; run(ctx: DoctorSettings): Promise<Check | Check[]> };

const once = <T>(read: () => Promise<T>): (() => Promise<T>) => {
  let value: Promise<T> | undefined;
  return () => (value ??= read());
};

/** The context doctor's checks run with on `client` (the owner's connection; a test's may be inside a transaction). */
export function doctorContext(client: pg.Client, config: Config, db: Database): DoctorContext {
  const indexes = once(
    async () =>
      (
        await client.query<IndexRow>(`
          select i.relname as name, am.amname as method, s.idx_scan::text as scans
            from pg_class i join pg_am am on am.oid = i.relam
            join pg_namespace n on n.oid = i.relnamespace and n.nspname = 'sheratan'
            left join pg_stat_user_indexes s on s.indexrelid = i.oid
           where i.relkind = 'i'`)
      ).rows,
  );
  return {
    client,
    config,
    db,
    tables: once(async () =>
      (await client.query<{ t: string }>("select table_name as t from information_schema.tables where table_schema = 'sheratan'")).rows.map((r) => r.t),
    ),
    embeddingDimension: once(async () => (await embeddingColumns(client)).live),
    indexes,
    annIndex: once(async () => ((await indexes()).some((i) => i.name === ANN_INDEX) ? describeAnnIndex(client) : null)),
  };
}

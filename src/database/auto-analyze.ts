// Table statistics kept fresh from the gateway, as autovacuum would.
// The embedded engine (PGlite) runs one backend and no autovacuum launcher,
// so a table it loads is never analyzed: its pg_class.reltuples stays -1 and
// the planner, costing a search over chunks it cannot count, chose an exact
// scan over the ANN index for 3,072-dimension embeddings at every size
// (issue 30, item 6: 800 ms a search against 87 ms through HNSW at 3,000
// chunks). A server's autovacuum does analyze, but only after its naptime
// (a minute by default) — a bulk load is searched by exact scan until then.
// So every few seconds the gateway asks which of the store's tables have
// changed by more than autovacuum's own threshold since their last ANALYZE
// (autovacuum_analyze_threshold + autovacuum_analyze_scale_factor × rows)
// and analyzes those, on the owner connection (the tables' owner may analyze
// them; nothing a user sent runs there).
import pg from 'pg';
import { log } from '../config/log.ts';

/** How often the gateway looks for tables to analyze (autovacuum_naptime's part here). */
export const AUTO_ANALYZE_INTERVAL_MS = 5000;

/** The store's tables that changed past autovacuum's analyze threshold, as `schema.table`. */
export const TABLES_TO_ANALYZE = `
  select format('%I.%I', s.schemaname, s.relname) as rel
    from pg_stat_user_tables s
    join pg_class c on c.oid = s.relid
   where s.schemaname in ('sheratan', 'sheratan_private')
     and s.n_mod_since_analyze > 0
     and s.n_mod_since_analyze >= current_setting('autovacuum_analyze_threshold')::float8
                                 + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0)`;

/** Analyzes the store's tables that need it now; returns their names. */
export async function analyzeChangedTables(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ rel: string }>(TABLES_TO_ANALYZE);
  for (const { rel } of rows) await client.query(`analyze ${rel}`);
  return rows.map((r) => r.rel);
}

export interface AutoAnalyze {
  stop(): Promise<void>;
}

/** Runs analyzeChangedTables every `intervalMs` on one connection to `url` until stopped. */
export function startAutoAnalyze(url: string, intervalMs = AUTO_ANALYZE_INTERVAL_MS): AutoAnalyze {
  let client: pg.Client | null = null;
  let timer: NodeJS.Timeout | null = null;
  let pass: Promise<void> = Promise.resolve();
  let stopped = false;
  const run = async (): Promise<void> => {
    try {
      if (!client) {
        const c = new pg.Client({ connectionString: url, application_name: 'sheratan auto-analyze', connectionTimeoutMillis: 5000 });
        c.on('error', () => undefined); // a lost connection is replaced on the next pass
        await c.connect();
        if (stopped) {
          await c.end().catch(() => undefined); // stopped while connecting
          return;
        }
        client = c;
      }
      const analyzed = await analyzeChangedTables(client);
      if (analyzed.length) log('debug', `analyzed ${analyzed.join(', ')} (changed past autovacuum's threshold)`);
    } catch (err) {
      // The database may be restarting or gone; the next pass tries again.
      log('debug', `auto-analyze pass failed: ${(err as Error).message}`);
      await client?.end().catch(() => undefined);
      client = null;
    }
  };
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      pass = run().finally(schedule);
    }, intervalMs);
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      // Ending the connection first ends a pass in flight (a stop must not wait on a database that hangs).
      await client?.end().catch(() => undefined);
      await pass;
    },
  };
}

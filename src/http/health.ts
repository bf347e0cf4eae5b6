// Liveness and readiness: /healthz answers while the process runs; /readyz
// only once the GraphQL schemas are built and the database answers.
import type express from 'express';
import type pg from 'pg';
import { retryAfterS, type Maintenance } from '../database/maintenance.ts';

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';

/**
 * `schemaReady` tells whether both schemas are built; `maintenance`, what long
 * work holds the embedded engine (database/maintenance.ts): then /readyz says
 * so at once, with Retry-After, instead of waiting behind it.
 */
export function addHealthRoutes(app: express.Express, pool: pg.Pool, schemaReady: () => boolean, maintenance: () => Maintenance | null = () => null): void {
  app.get(HEALTH_PATH, (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get(READY_PATH, async (_req, res) => {
    const work = maintenance();
    if (work) {
      res.set('Retry-After', String(retryAfterS(work)));
      res
        .status(503)
        .json({ status: 'maintenance', reason: work.reason, since: work.since, ...(work.expectedS !== null ? { expected_s: work.expectedS } : {}) });
      return;
    }
    try {
      await pool.query('select 1');
      if (!schemaReady()) throw new Error('the GraphQL schema is still being built');
      res.json({ status: 'ready' });
    } catch (err) {
      res.status(503).json({ status: 'unavailable', reason: (err as Error).message });
    }
  });
}

// Liveness and readiness: /healthz answers while the process runs; /readyz
// only once the GraphQL schemas are built and the database answers.
import type express from 'express';
import type pg from 'pg';

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';

/** `schemaReady` tells whether both schemas are built. */
export function addHealthRoutes(app: express.Express, pool: pg.Pool, schemaReady: () => boolean): void {
  app.get(HEALTH_PATH, (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get(READY_PATH, async (_req, res) => {
    try {
      await pool.query('select 1');
      if (!schemaReady()) throw new Error('the GraphQL schema is still being built');
      res.json({ status: 'ready' });
    } catch (err) {
      res.status(503).json({ status: 'unavailable', reason: (err as Error).message });
    }
  });
}

// GraphQL requests during maintenance on the embedded engine (issue 32): while
// a command holds the engine's one backend for long work (index:tune's
// rebuild, recorded in the data directory: database/maintenance.ts), a
// request would wait behind it and end as a timeout or a generic 503. It is
// answered at once instead, as /readyz is: 503 with Retry-After and a GraphQL
// error whose extensions name the maintenance (code MAINTENANCE, the reason,
// since when, and the seconds to wait). A request that was already waiting
// for the backend when the work began is told the same (plugins/error-mask.ts).
// A server has no such state: its index builds are CONCURRENTLY and the API
// keeps serving.
import type { NextFunction, Request, Response } from 'express';
import { retryAfterS, type Maintenance } from '../database/maintenance.ts';
import { MAINTENANCE, type MaintenanceNotice } from '../../plugins/error-mask.ts';

/** The GraphQL error that tells a client about `m` (null: none). */
export function maintenanceNotice(m: Maintenance | null, now = Date.now()): MaintenanceNotice | null {
  if (!m) return null;
  const retryAfter = retryAfterS(m, now);
  return {
    message: `the database is under maintenance: ${m.reason}, since ${m.since}; retry in ${retryAfter} s`,
    extensions: { code: MAINTENANCE, reason: m.reason, since: m.since, ...(m.expectedS !== null ? { expectedS: m.expectedS } : {}), retryAfter },
  };
}

/** Answers 503 MAINTENANCE (with Retry-After) while `current` names maintenance in progress; otherwise passes the request on. */
export function maintenanceGate(current: () => Maintenance | null) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    const notice = maintenanceNotice(current());
    if (!notice) return next();
    res
      .status(503)
      .set('Retry-After', String(notice.extensions.retryAfter))
      .json({ errors: [notice] });
  };
}

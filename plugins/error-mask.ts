// What clients see of errors: Postgres errors that describe the caller's own
// input or permissions (SQLSTATE classes 22, 23, and 42501, 54000, 55000, 57014, P0001) pass through
// with their code; anything else is masked: the client sees a reference, the
// log line has the reference, the request id and the details.
import { randomUUID } from 'node:crypto';
import { isSafeError } from 'grafast';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';

/** The error code of a request that could not have the database in time. */
export const DATABASE_BUSY = 'DATABASE_BUSY';
/** The error code of a request refused during maintenance (src/http/maintenance-gate.ts builds the error). */
export const MAINTENANCE = 'MAINTENANCE';

/** What a request is told while maintenance holds the database: a message and extensions (code MAINTENANCE, reason, retryAfter…). */
export interface MaintenanceNotice {
  message: string;
  extensions: Record<string, unknown> & { code: typeof MAINTENANCE; retryAfter: number };
}

// 54000: a limit the request itself passed (sheratan_private.assert_group_count).
/**
 * The embedded engine's SQLSTATE for a request that could not have its one
 * backend within DB_POOL_TIMEOUT_MS, over its channel or its socket
 * (BACKEND_BUSY_SQLSTATE in packages/pglite-server/src/pg-server.ts: the engine's side of
 * this contract, as the search functions' names are the SQL's).
 */
const EMBEDDED_BACKEND_BUSY = 'SB000';
const CLIENT_SQLSTATE = /^(22|23)|^42501$|^54000$|^55000$|^57014$|^P0001$/;
// @dataplan/pg's words when a delete matched no row the caller may delete.
const NOTHING_DELETED = /^No values were deleted in collection '\w+' because no values you can delete were found matching these criteria\.$/;

// Socket errors, SQLSTATE class 08 (connection exception) and 57P01-57P03
// (the server shutting down or not yet accepting), and node-postgres's own
// words for a dropped connection or a connect timeout.
const CONNECTION_CODES = /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|08\w{3}|57P0[123])$/;
const CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/;

function isConnectionFailure(err: Error & { code?: unknown }): boolean {
  return (typeof err.code === 'string' && CONNECTION_CODES.test(err.code)) || CONNECTION_MESSAGES.test(err.message);
}

function connectionProblem(err: Error & { code?: unknown }): string {
  if (err.code === 'ECONNREFUSED') return 'connection refused';
  if (/timeout/.test(err.message)) return 'no connection within DB_POOL_TIMEOUT_MS';
  return 'connection lost';
}

/** The same error (same place in the response), with a message and code fit for the client. */
function reword(error: GraphQLError, message: string, extensions: Record<string, unknown>): GraphQLError {
  return new GraphQLError(message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, extensions });
}

/** Where the details of a masked error go (the gateway's log, with the request id). */
export type ErrorLog = (level: 'warn' | 'error', message: string, fields: Record<string, unknown>) => void;

/**
 * The preset's `maskError`, logging through `log`; `maintenance` tells what
 * maintenance holds the database now, if any (embedded: database/maintenance.ts).
 */
export const makeMaskError =
  (log: ErrorLog, maintenance: () => MaintenanceNotice | null = () => null) =>
  (error: GraphQLError): GraphQLError | GraphQLFormattedError =>
    masked(error, log, maintenance);

/** SheratanPreset's: the details go to stderr as one JSON line (the gateway passes its own log). */
export const maskError = makeMaskError((level, message, fields) => {
  process.stderr.write(`${JSON.stringify({ level, message, ...fields })}\n`);
});

function masked(error: GraphQLError, log: ErrorLog, maintenance: () => MaintenanceNotice | null = () => null): GraphQLError | GraphQLFormattedError {
  const original = error.originalError as (Error & { code?: unknown }) | undefined;
  if (!original || original instanceof GraphQLError) return error;
  if (typeof original.code === 'string' && CLIENT_SQLSTATE.test(original.code)) {
    return reword(error, original.message, { ...error.extensions, code: original.code });
  }
  // The embedded engine's one backend stayed held by another client (a psql
  // session inside a transaction, say): the request waited DB_POOL_TIMEOUT_MS
  // and ran nothing; like an exhausted pool it answers 503 (database-busy.ts).
  // When that was maintenance (a request already waiting when index:tune began), it says so, as a new request is told.
  if (original.code === EMBEDDED_BACKEND_BUSY) {
    const notice = maintenance();
    return notice ? reword(error, notice.message, notice.extensions) : reword(error, original.message, { code: DATABASE_BUSY });
  }
  // The database going away is not a bug to hide behind a reference: say so, so clients retry.
  if (isConnectionFailure(original)) {
    log('warn', 'database unavailable while executing a request', { path: error.path?.join('.'), error: original.message });
    return reword(error, `the database is unavailable (${connectionProblem(original)}); retry shortly`, { code: 'DATABASE_UNAVAILABLE' });
  }
  // Deleting a row that does not exist (or that RLS hides) is the caller's mistake, not ours.
  if (NOTHING_DELETED.test(original.message)) return reword(error, original.message, { ...error.extensions, code: 'NOT_FOUND' });
  // Errors without a path concern the request as a whole (planning, validation), not data.
  if (isSafeError(original) || !error.path) return error;
  const id = randomUUID();
  // The details stay here, with the request id: the client gets only the reference.
  const pgError = original as Error & { code?: string; detail?: string; hint?: string; where?: string };
  log('error', 'unexpected error while executing a request', {
    reference: id,
    path: error.path.join('.'),
    // Absent fields (undefined) are left out of the JSON line.
    sqlstate: pgError.code,
    detail: pgError.detail,
    hint: pgError.hint,
    where: pgError.where,
    error: original.stack ?? String(original),
  });
  return reword(error, `An unexpected error occurred (reference ${id})`, { code: 'INTERNAL_SERVER_ERROR', reference: id });
}

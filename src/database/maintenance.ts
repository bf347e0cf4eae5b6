// Maintenance on the embedded engine (issue 32): its one backend runs a long
// statement (an index rebuild) to the end before anything else, so the
// gateway's /readyz would wait, then time out. The command doing the work
// records it in the data directory first (maintenance.json: what, since when,
// for about how long, by which process); /readyz reads that file, which costs
// no statement, and answers 503 at once with the reason and a Retry-After.
// A record whose process is gone is stale and ignored.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Maintenance {
  /** What is being done, for people (e.g. "rebuilding the ANN index over 20,000 chunks"). */
  reason: string;
  /** When it started (ISO 8601). */
  since: string;
  /** About how long it takes, in seconds, when known. */
  expectedS: number | null;
  /** The process doing it. */
  pid: number;
}

export const maintenanceFile = (dataDir: string): string => path.join(dataDir, 'maintenance.json');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The maintenance in progress in `dataDir`, or null (none, unreadable, or its process is gone). */
export function currentMaintenance(dataDir: string): Maintenance | null {
  // Asked on every GraphQL request (http/maintenance-gate.ts): no file, no read (and no exception).
  if (!existsSync(maintenanceFile(dataDir))) return null;
  let record: Maintenance;
  try {
    record = JSON.parse(readFileSync(maintenanceFile(dataDir), 'utf8')) as Maintenance;
  } catch {
    return null;
  }
  return typeof record.pid === 'number' && alive(record.pid) ? record : null;
}

/** Seconds a client should wait before asking again: what is left of the expected time, within 5 s and 5 minutes. */
export function retryAfterS(m: Maintenance, now = Date.now()): number {
  const left = m.expectedS === null ? 30 : m.expectedS - (now - Date.parse(m.since)) / 1000;
  return Math.round(Math.min(300, Math.max(5, left)));
}

/** Runs `fn` with the maintenance recorded in `dataDir` (removed afterwards, however it ends). */
export async function withMaintenance<T>(dataDir: string, reason: string, expectedS: number | null, fn: () => Promise<T>): Promise<T> {
  const record: Maintenance = { reason, since: new Date().toISOString(), expectedS, pid: process.pid };
  writeFileSync(maintenanceFile(dataDir), `${JSON.stringify(record)}\n`);
  try {
    return await fn();
  } finally {
    rmSync(maintenanceFile(dataDir), { force: true });
  }
}

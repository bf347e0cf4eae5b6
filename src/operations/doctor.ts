// `npm run doctor`: the seed guide's "Verifying the Setup" and
// "Troubleshooting" sections as checks, each with the fix spelled out. Each
// check is a small named unit in src/operations/doctor/ (its README lists
// them and what each guards); DOCTOR_CHECKS is their order, which runDoctor
// walks.
import { withPgClient, type Database } from '../database/connect.ts';
import type { Config } from '../config/config.ts';
import { doctorContext, type Check, type DoctorCheck } from './doctor/types.ts';
import { connection, connectionFailure, poolSettings, ssl } from './doctor/connection.ts';
import { serverVersion, vectorExtension } from './doctor/server.ts';
import { cascadeForeignKey, tables } from './doctor/schema.ts';
import { embeddingDimension, embeddingModelSwitch, embeddingProvider } from './doctor/embedding.ts';
import { annIndex, annIndexKind, indexes, indexUsage } from './doctor/indexes.ts';
import { rolesGrantsAndRls } from './doctor/security.ts';
import { migrations } from './doctor/migrations.ts';
import { readReplica } from './doctor/replica.ts';

export type { Check, Status, DoctorCheck } from './doctor/types.ts';
export { INDEX_USAGE_SQL } from './doctor/indexes.ts';

/** Doctor's checks in the order it prints them. */
export const DOCTOR_CHECKS: readonly DoctorCheck[] = [
  connection,
  serverVersion,
  vectorExtension,
  tables,
  embeddingDimension,
  embeddingProvider,
  embeddingModelSwitch,
  indexes,
  annIndexKind,
  annIndex,
  indexUsage,
  cascadeForeignKey,
  rolesGrantsAndRls,
  poolSettings,
  ssl,
  readReplica,
  migrations,
];

/**
 * Runs `checks` in order: those on doctor's owner connection first (a check
 * that throws ends them with a "checks" failure), then those that connect by
 * themselves. A connection that cannot be made is the one line returned.
 */
export async function runDoctor(config: Config, db: Database, checks: readonly DoctorCheck[] = DOCTOR_CHECKS): Promise<Check[]> {
  const results: Check[] = [];
  let connected = false;
  try {
    await withPgClient(db.ownerUrl, async (client) => {
      connected = true;
      const ctx = doctorContext(client, config, db);
      for (const check of checks) if (!check.afterConnection) results.push(...[await check.run(ctx)].flat());
    });
  } catch (err) {
    if (!connected) return [connectionFailure(err as Error, db)];
    results.push({ name: 'checks', status: 'fail', detail: `a check failed to run: ${(err as Error).message}` });
  }
  for (const check of checks) if (check.afterConnection) results.push(...[await check.run({ config, db })].flat());
  return results;
}

export function formatChecks(checks: Check[]): string {
  const mark = { ok: '✓', warn: '!', fail: '✗' } as const;
  return checks.map((c) => `${mark[c.status]} ${c.name}: ${c.detail}${c.fix ? `\n    fix: ${c.fix}` : ''}`).join('\n');
}

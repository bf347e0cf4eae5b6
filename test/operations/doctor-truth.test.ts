// doctor tells one truth (issue 32): whatever the ANN index is and whatever
// VECTOR_INDEX says, no check claims a VECTOR_INDEX other than the
// configuration's, and a difference is one warning with both ways out;
// index:tune says to set VECTOR_INDEX after building another kind; the seed
// guide's monitoring query is printed corrected, and it runs.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { runDoctor, INDEX_USAGE_SQL, type Check } from '../../src/operations/doctor.ts';
import { INDEX_KINDS, rebuildAnnIndex, specForKind } from '../../src/database/ann-index.ts';
import { projectRoot } from '../../src/config/paths.ts';

let h: Harness;
let owner: pg.Client;
beforeAll(async () => {
  h = await startHarness();
  owner = await h.owner();
});
afterAll(() => h.stop());

const claims = (checks: Check[]): string[] =>
  checks.flatMap((c) => [...`${c.detail}`.matchAll(/VECTOR_INDEX is (\w+)|as VECTOR_INDEX=(\w+) asks/g)].map((m) => m[1] ?? m[2]!));

test('for every index kind built and every VECTOR_INDEX, the checks agree with the configuration and each other', async () => {
  for (const built of INDEX_KINDS) {
    await rebuildAnnIndex(owner, built === 'ivfflat' ? specForKind(built, 1) : specForKind(built), { concurrently: false, maintenanceWorkMem: '64MB' });
    for (const wanted of INDEX_KINDS) {
      const checks = await runDoctor({ ...h.config, vectorIndex: wanted }, h.gateway.db);
      const seen = `index ${built}, VECTOR_INDEX ${wanted}`;
      expect([seen, claims(checks).filter((c) => c !== wanted)]).toEqual([seen, []]);
      const kind = checks.filter((c) => c.name === 'ANN index kind');
      if (built === wanted) {
        expect([seen, kind]).toEqual([seen, []]);
      } else {
        expect([seen, kind.length]).toEqual([seen, 1]);
        expect(kind[0]).toMatchObject({ status: 'warn' });
        expect(kind[0]!.fix).toContain(`set VECTOR_INDEX=${built}`);
        expect(kind[0]!.fix).toContain(`npm run index:tune -- --kind ${wanted}`);
      }
    }
  }
  await rebuildAnnIndex(owner, specForKind('hnsw'), { concurrently: false, maintenanceWorkMem: '64MB' });
}, 300_000);

test('index:tune --kind says to set VECTOR_INDEX when the index it built is not the kind VECTOR_INDEX names', () => {
  const tune = (kind: string) =>
    spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'index:tune', '--kind', kind], {
      env: { ...process.env, ...h.cliEnv, VECTOR_INDEX: 'hnsw' },
      encoding: 'utf8',
      timeout: 120_000,
    });
  const other = tune('hnsw_halfvec');
  expect(other.stderr).toBe('');
  expect(other.stdout).toContain('set VECTOR_INDEX=hnsw_halfvec (in .env or the environment) to keep this index');
  const same = tune('hnsw');
  expect(same.status).toBe(0);
  expect(same.stdout).not.toContain('set VECTOR_INDEX');
}, 300_000);

test("doctor prints the seed guide's index monitoring query corrected, and it reports every index of the store", async () => {
  const checks = await runDoctor(h.config, h.gateway.db);
  const usage = checks.find((c) => c.name === 'index usage')!;
  expect(usage.status).toBe('ok');
  expect(usage.detail).toContain(INDEX_USAGE_SQL);
  const reported = (await owner.query<{ indexname: string }>(INDEX_USAGE_SQL)).rows.map((r) => r.indexname).sort();
  const indexes = (await owner.query<{ indexname: string }>("select indexname from pg_indexes where schemaname = 'sheratan'")).rows
    .map((r) => r.indexname)
    .sort();
  expect(reported).toEqual(indexes);
  // As the seed guide wrote it, it does not run (and its schema holds nothing of the store's).
  await expect(owner.query("SELECT schemaname, tablename, indexname, idx_scan FROM pg_stat_user_indexes WHERE schemaname = 'public'")).rejects.toMatchObject({
    code: '42703',
  });
});

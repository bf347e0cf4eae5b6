// db:reset (graphile-migrate's reset on the embedded engine): the database is
// wiped, the roles are recreated by afterReset, and every migration reapplied.
import { rmSync } from 'node:fs';
import * as gm from 'graphile-migrate';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, withPgClient, type Database } from '../../src/database.ts';
import { migrateSettings, migrateToHead, releaseMigratePools } from '../../src/migrations.ts';
import { tempDataDir } from '../support/harness.ts';

const dataDir = tempDataDir();
const config = parseConfig({ SHERATAN_DATA_DIR: dataDir });
let db: Database;

beforeAll(async () => {
  db = await openDatabase(config, { purpose: 'test', serve: true });
  await migrateToHead(config, db);
});
afterAll(async () => {
  releaseMigratePools();
  await db.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test('migrating again is a no-op', async () => {
  await migrateToHead(config, db);
  const status = await gm.status(migrateSettings(config, db));
  expect(status.remainingMigrations).toEqual([]);
});

test('reset wipes the data, recreates the roles and reapplies every migration', async () => {
  await withPgClient(db.ownerUrl, (c) => c.query("set jwt.claims.tenant = 't'; insert into sheratan.documents (tenant, title) values ('t', 'doomed')"));
  await gm.reset(migrateSettings(config, db));
  await withPgClient(db.ownerUrl, async (c) => {
    expect((await c.query('select count(*)::int as n from sheratan.documents')).rows[0].n).toBe(0);
    const roles = await c.query("select rolname from pg_roles where rolname like 'sheratan%' order by rolname");
    expect(roles.rows.map((r) => r.rolname)).toEqual(['sheratan', 'sheratan_anonymous', 'sheratan_app', 'sheratan_authenticator', 'sheratan_readonly']);
    const applied = await c.query('select count(*)::int as n from graphile_migrate.migrations');
    expect(applied.rows[0].n).toBeGreaterThanOrEqual(2);
  });
});

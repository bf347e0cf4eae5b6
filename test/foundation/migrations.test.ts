// Migrations on either backend: migrate is idempotent, db:reset (graphile-migrate's
// reset) wipes the data, keeps the roles and reapplies every migration, and on a
// server it is refused, before anything is dropped, when it could not finish.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as gm from 'graphile-migrate';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { onDatabase, openDatabase, releaseIdleMigratePools, withPgClient, type Database } from '../../src/database/connect.ts';
import { migrateSettings, migrateToHead, migrationStatus, structuredMigrateLogger as quiet } from '../../src/database/migrations.ts';
import { setLogLevel } from '../../src/config/log.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { AUTHENTICATOR_PASSWORD, createTestDatabase, SUPERUSER_URL, serverTest, TEST_ENGINE_ENV, type TestDatabase } from '../support/backend.ts';

let test_db: TestDatabase;
let config: Config;
let db: Database;

beforeAll(async () => {
  test_db = await createTestDatabase();
  config = parseConfig({ ...test_db.env, ...TEST_ENGINE_ENV, LOG_LEVEL: 'silent' });
  setLogLevel('silent');
  db = await openDatabase(config, { purpose: 'test', serve: true });
  await migrateToHead(config, db, quiet);
});
afterAll(async () => {
  await db.close();
  await test_db.drop();
});

const cli = (args: string[], env: Record<string, string>) =>
  spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), ...args], {
    env: { ...process.env, LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });

test('migrating again is a no-op', async () => {
  await migrateToHead(config, db, quiet);
  const status = await gm.status(migrateSettings(config, db, quiet));
  expect(status.remainingMigrations).toEqual([]);
});

test('reset wipes the data, keeps the roles and reapplies every migration (on a server, as the owner alone)', async () => {
  await withPgClient(db.ownerUrl, (c) => c.query("set jwt.claims.tenant = 't'; insert into sheratan.documents (tenant, title) values ('t', 'doomed')"));
  await gm.reset(migrateSettings(config, db, quiet));
  releaseIdleMigratePools();
  await withPgClient(db.ownerUrl, async (c) => {
    expect((await c.query('select count(*)::int as n from sheratan.documents')).rows[0].n).toBe(0);
    const roles = await c.query(
      "select rolname from pg_roles where rolname in ('sheratan', 'sheratan_anonymous', 'sheratan_app', 'sheratan_authenticator', 'sheratan_readonly') order by rolname",
    );
    expect(roles.rows.map((r) => r.rolname)).toEqual(['sheratan', 'sheratan_anonymous', 'sheratan_app', 'sheratan_authenticator', 'sheratan_readonly']);
    const applied = await c.query('select count(*)::int as n from graphile_migrate.migrations');
    expect(applied.rows[0].n).toBe(readdirSync(path.join(projectRoot, 'migrations', 'committed')).filter((f) => f.endsWith('.sql')).length);
  });
  // The gateway's login still connects to the recreated database.
  await withPgClient(db.authUrl, async (c) => expect((await c.query('select current_user as u')).rows[0].u).toBe('sheratan_authenticator'));
});

test('db:commit and db:uncommit work as the owner alone (on a server the shadow database is recreated without a superuser)', async () => {
  // A copy of the migrations folder, so that the repository's stays as it is.
  const folder = mkdtempSync(path.join(os.tmpdir(), 'sheratan-migrations-'));
  try {
    cpSync(path.join(projectRoot, 'migrations'), folder, { recursive: true });
    writeFileSync(path.join(folder, 'current.sql'), 'create table if not exists sheratan_private.commit_probe (id int primary key);\n');
    const settings = { ...migrateSettings(config, db, quiet), migrationsFolder: folder };
    const before = readdirSync(path.join(folder, 'committed')).length;
    await gm.commit(settings, 'commit probe');
    releaseIdleMigratePools();
    const committed = readdirSync(path.join(folder, 'committed'));
    expect(committed).toHaveLength(before + 1);
    expect(readFileSync(path.join(folder, 'committed', committed.sort().at(-1)!), 'utf8')).toMatch(/--! Message: commit probe[\s\S]*commit_probe/);
    await withPgClient(db.ownerUrl, async (c) =>
      expect((await c.query("select to_regclass('sheratan_private.commit_probe') is not null as there")).rows[0].there).toBe(true),
    );
    await gm.uncommit(settings);
    releaseIdleMigratePools();
    expect(readdirSync(path.join(folder, 'committed'))).toHaveLength(before);
    expect(readFileSync(path.join(folder, 'current.sql'), 'utf8')).toMatch(/commit_probe/);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('db:status exits as graphile-migrate status does: 0 up to date, 2 when current.sql has uncommitted changes', async () => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'sheratan-migrations-'));
  try {
    cpSync(path.join(projectRoot, 'migrations'), folder, { recursive: true });
    const settings = { ...migrateSettings(config, db, quiet), migrationsFolder: folder };
    writeFileSync(path.join(folder, 'current.sql'), '-- Enter migration here\n');
    expect(await migrationStatus(settings)).toEqual({ report: 'Database is up to date with the committed migrations.\n', exitCode: 0 });
    writeFileSync(path.join(folder, 'current.sql'), 'create table if not exists sheratan_private.status_probe (id int);\n');
    expect(await migrationStatus(settings)).toEqual({
      report: 'Database is up to date with the committed migrations.\nmigrations/current.sql has uncommitted changes.\n',
      exitCode: 2,
    });
    releaseIdleMigratePools();
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

serverTest('the owner role and its CREATEDB right are server concepts')(
  'db:reset -- --erase by an owner that may not create databases is refused and drops nothing',
  async () => {
    const suffix = `${process.pid}_${Date.now()}`;
    const owner = `owner_nocreatedb_${suffix}`;
    const name = `sheratan_nocreatedb_${suffix}`;
    await withPgClient(SUPERUSER_URL!, async (c) => {
      await c.query(`create role ${owner} login password 'owner-password-123' nocreatedb`);
      await c.query(`create database ${name} owner ${owner}`);
    });
    try {
      const url = new URL(onDatabase(SUPERUSER_URL!, name));
      url.username = owner;
      url.password = 'owner-password-123';
      const result = cli(['db:reset', '--erase'], { DATABASE_URL: url.toString(), AUTH_DATABASE_URL: test_db.env.AUTH_DATABASE_URL! });
      expect(result.stderr).toMatch(/db:reset refused, nothing was dropped: owner_nocreatedb_\S+ may not create databases \(CREATEDB\)/);
      expect(result.status).toBe(1);
      const still = await withPgClient(SUPERUSER_URL!, (c) => c.query('select 1 from pg_database where datname = $1', [name]));
      expect(still.rowCount).toBe(1);
    } finally {
      await withPgClient(SUPERUSER_URL!, async (c) => {
        await c.query(`drop database if exists ${name} with (force)`);
        await c.query(`drop role if exists ${owner}`);
      });
    }
  },
);

serverTest('passwords of server roles are set by db:bootstrap only')(
  "db:migrate leaves the authenticator's password alone, whatever AUTH_DATABASE_URL says (roles are cluster-wide)",
  async () => {
    const other = new URL(test_db.env.AUTH_DATABASE_URL!);
    other.password = 'another-store-on-this-cluster';
    const result = cli(['db:migrate'], { ...test_db.env, AUTH_DATABASE_URL: other.toString() });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const login = new URL(test_db.env.AUTH_DATABASE_URL!);
    expect(decodeURIComponent(login.password)).toBe(AUTHENTICATOR_PASSWORD);
    await withPgClient(login.toString(), async (c) => expect((await c.query('select 1 as one')).rows[0].one).toBe(1));
  },
);

// db:watch behaves as graphile-migrate's watch does, on both backends:
// current.sql runs only when it changed (minified), `--! no-transaction`
// runs it outside a transaction, the beforeCurrent/afterCurrent actions run
// around a changed run and not otherwise, and a failed run records nothing.
// (On the embedded engine db:watch once ran current.sql in a transaction on
// every save, whatever its header, and ran no actions.)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { watchCurrent } from '../../src/database/migrations.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
let owner: pg.Client;
let dir: string;
beforeAll(async () => {
  h = await startHarness();
  owner = await h.owner();
  dir = mkdtempSync(path.join(tmpdir(), 'sheratan-watch-'));
  // The probe's table exists before any test, so each can count its own runs from where it starts.
  await owner.query('create table if not exists sheratan_private.watch_probe (n serial primary key, note text)');
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await h.stop();
});

const PROBE = `create table if not exists sheratan_private.watch_probe (n serial primary key, note text);
insert into sheratan_private.watch_probe (note) values ('ran');`;

/** Runs the watcher once on `sql`; returns whether it succeeded and what it said. */
async function runOnce(sql: string, settings = {}): Promise<{ ok: boolean; lines: string[] }> {
  const file = path.join(dir, 'current.sql');
  writeFileSync(file, sql);
  const lines: string[] = [];
  const watcher = watchCurrent(h.config, h.gateway.db, { file, once: true, log: (l) => lines.push(l), settings });
  const ok = await watcher.first;
  watcher.stop();
  return { ok, lines };
}
const runs = async (): Promise<number> => (await owner.query<{ n: number }>('select count(*)::int as n from sheratan_private.watch_probe')).rows[0]!.n;

test('an unchanged current.sql is not run again, also when only its comments changed', async () => {
  const start = await runs();
  expect(await runOnce(PROBE)).toMatchObject({ ok: true, lines: [expect.stringMatching(/^current\.sql applied in \d+ ms$/)] });
  expect(await runs()).toBe(start + 1);
  expect(await runOnce(PROBE)).toEqual({ ok: true, lines: ['current.sql unchanged since it last ran, skipped'] });
  expect(await runOnce(`-- a comment only\n${PROBE}\n-- another`)).toEqual({ ok: true, lines: ['current.sql unchanged since it last ran, skipped'] });
  expect(await runs()).toBe(start + 1);
  expect((await runOnce(`${PROBE}\nselect 1;`)).ok).toBe(true);
  expect(await runs()).toBe(start + 2);
});

test('--! no-transaction runs current.sql outside a transaction (VACUUM would fail inside one)', async () => {
  const inTransaction = await runOnce('vacuum sheratan.documents;');
  expect(inTransaction.ok).toBe(false);
  expect(inTransaction.lines[0]).toMatch(/^current\.sql failed \(nothing applied; the last good schema stays\): VACUUM cannot run inside a transaction block/);
  const outside = await runOnce('--! no-transaction\nvacuum sheratan.documents;');
  expect(outside).toMatchObject({ ok: true, lines: [expect.stringMatching(/^current\.sql applied/)] });
});

test('beforeCurrent and afterCurrent actions run around a changed run only; a failed run records nothing and runs again', async () => {
  const marker = path.join(dir, 'actions.log');
  writeFileSync(marker, '');
  const settings = {
    beforeCurrent: [{ _: 'command' as const, command: `echo before >> ${marker}` }],
    afterCurrent: [{ _: 'command' as const, command: `echo after >> ${marker}` }],
  };
  const sql = `${PROBE}\nselect 'with actions';`;
  expect((await runOnce(sql, settings)).ok).toBe(true);
  expect((await runOnce(sql, settings)).ok).toBe(true); // unchanged: no actions
  expect(readFileSync(marker, 'utf8')).toBe('before\nafter\n');

  const broken = `${PROBE}\nselect * from no_such_table;`;
  const before = await runs();
  expect((await runOnce(broken)).ok).toBe(false);
  expect(await runs()).toBe(before); // rolled back
  const again = await runOnce(broken);
  expect(again.lines[0]).toMatch(/^current\.sql failed .*relation "no_such_table" does not exist/); // not "unchanged": it runs again
});

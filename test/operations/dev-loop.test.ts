// The dev loop: saving current.sql changes the GraphQL schema within seconds,
// without a restart; a broken current.sql is reported and the last good schema stays.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import { startGateway, type RunningGateway } from '../../src/http/start.ts';
import { watchCurrent, type CurrentWatcher } from '../../src/database/migrations.ts';
import { SchemaReloader } from '../../src/graphql/schema-reload.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { describeEmbedded, TEST_EMBEDDING_ENV, TEST_ENGINE_ENV } from '../support/backend.ts';
import { freePort, runCli, waitFor as waitUntil } from '../support/processes.ts';

describeEmbedded('npm run dev serves the embedded database', 'the dev loop', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-dev-'));
  const current = path.join(dataDir, 'current.sql');
  let gateway: RunningGateway;
  let watcher: CurrentWatcher;
  const lines: string[] = [];

  beforeAll(async () => {
    writeFileSync(current, '-- nothing yet\n');
    const reloader = new SchemaReloader();
    gateway = await startGateway(parseConfig({ SHERATAN_DATA_DIR: path.join(dataDir, 'db'), LOG_LEVEL: 'silent', ...TEST_EMBEDDING_ENV, ...TEST_ENGINE_ENV }), {
      port: 0,
      reloader,
    });
    watcher = watchCurrent(gateway.config, gateway.db, { file: current, onApplied: () => reloader.reload(), log: (l) => lines.push(l) });
    await watcher.first;
  });
  afterAll(async () => {
    watcher.stop();
    await gateway.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function post(query: string): Promise<{ data?: Record<string, unknown>; errors?: Array<{ message: string }> }> {
    const token = signToken(gateway.config.jwtSecret!, { role: 'sheratan_app', tenant: 'acme' });
    const res = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query }),
    });
    return (await res.json()) as never;
  }
  const queryFields = async (): Promise<string[]> =>
    ((await post('{ __type(name: "Query") { fields { name } } }')).data!.__type as { fields: Array<{ name: string }> }).fields.map((f) => f.name);

  async function waitFor(predicate: () => Promise<boolean>, ms: number): Promise<number> {
    const started = Date.now();
    while (Date.now() - started < ms) {
      if (await predicate()) return Date.now() - started;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`not within ${ms} ms`);
  }

  /** Saves a current.sql that creates `sheratan.<table>`; resolves with how long the schema took to show all<Table>s. */
  async function saveTable(table: string, field: string): Promise<number> {
    writeFileSync(
      current,
      `drop table if exists sheratan.${table};
       create table sheratan.${table} (id integer primary key, body text);
       comment on table sheratan.${table} is 'A table of the dev loop test.';
       grant select on sheratan.${table} to sheratan_app;\n`,
    );
    return waitFor(async () => (await queryFields()).includes(field), 15_000);
  }

  test('saving current.sql shows in the GraphQL schema within seconds', async () => {
    expect(await queryFields()).not.toContain('allNotes');
    const took = await saveTable('notes', 'allNotes');
    process.stdout.write(`current.sql edit visible in the schema after ${took} ms\n`);
    expect((await post('{ allNotes { totalCount } }')).data).toEqual({ allNotes: { totalCount: 0 } });
  });

  test('a broken current.sql prints the error and the last good schema keeps serving', async () => {
    // Its own last good schema, whatever ran before.
    await saveTable('drafts', 'allDrafts');
    const failures = lines.length;
    writeFileSync(current, 'create table sheratan.broken (;\n');
    await waitFor(async () => lines.slice(failures).some((l) => /current\.sql failed .*syntax error/.test(l)), 15_000);
    expect(await queryFields()).toContain('allDrafts');
    expect((await post('{ allDrafts { totalCount } }')).data).toEqual({ allDrafts: { totalCount: 0 } });
  });

  test('npm run dev says when it serves and when it stops, and exits 0', async () => {
    const dev = runCli(['dev'], { SHERATAN_DATA_DIR: path.join(dataDir, 'dev-process'), PORT: String(await freePort()), LOG_LEVEL: 'warn' });
    try {
      await waitUntil(() => /Sheratan Store \(dev\) is serving http:\/\/127\.0\.0\.1:\d+\/graphql/.test(dev.output()), 90_000, 'dev serving');
    } finally {
      dev.child.kill('SIGINT');
    }
    expect((await dev.exited).code).toBe(0);
    expect(dev.output()).toMatch(/Sheratan Store \(dev\): SIGINT, stopping\nSheratan Store \(dev\) stopped\n$/);
  }, 120_000);
});

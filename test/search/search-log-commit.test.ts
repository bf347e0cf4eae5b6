// A search's log row does not make its transaction wait for the WAL flush,
// unless the transaction wrote something else first; the row is written
// either way. (Every search used to be a synchronously committed write.)
import { startDatabase, type TestDb } from '../support/database.ts';
import { randomUnit, rng, toPgVector } from '../support/embeddings.ts';

let h: TestDb;
beforeAll(async () => {
  h = await startDatabase();
});
afterAll(() => h.close());

const q = toPgVector(randomUnit(384, rng(3)));
const searchAndSetting = `select (select count(*) from sheratan.search_document_chunks($1::vector, 5)) as n, current_setting('synchronous_commit') as sync`;

test('a search alone commits asynchronously and still logs its row', async () => {
  const before = (await (await h.owner()).query<{ n: number }>('select count(*)::int as n from sheratan.search_logs')).rows[0]!.n;
  const seen = await h.asRole('sheratan_app', 'acme', async (c) => {
    const r = (await c.query(searchAndSetting, [q])).rows[0];
    const logged = (await c.query<{ n: number }>('select count(*)::int as n from sheratan.search_logs')).rows[0]!.n;
    return { sync: r.sync as string, logged };
  });
  expect(seen.sync).toBe('off');
  expect(seen.logged).toBe(1); // the caller sees its own tenant's log rows
  expect(before).toBe(0);
});

test('after a write in the same transaction the search leaves its durability alone', async () => {
  const sync = await h.asRole('sheratan_app', 'acme', async (c) => {
    await c.query("insert into sheratan.documents (title) values ('written first')");
    return (await c.query(searchAndSetting, [q])).rows[0].sync as string;
  });
  expect(sync).toBe('on');
});

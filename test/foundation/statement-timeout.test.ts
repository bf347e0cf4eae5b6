// STATEMENT_TIMEOUT_MS on each backend. A server interrupts a statement that
// runs too long (SQLSTATE 57014). PGlite cannot: its backend runs inside one
// synchronous call on the engine's thread, statement_timeout's timer is a
// JavaScript timer that cannot fire until that call returns, and its memory is
// not shared, so no other thread can raise Postgres's interrupt flag (see the
// README). On the embedded engine the API's cost limits bound the work instead
// (test/security/cost-limits.test.ts); this test keeps the difference visible.
import type pg from 'pg';
import { startDatabase, type TestDb } from '../support/database.ts';
import { backend } from '../support/backend.ts';

let h: TestDb;
let owner: pg.Client;
beforeAll(async () => {
  h = await startDatabase();
  owner = await h.owner();
});
afterAll(() => h.close());

test(
  backend === 'server'
    ? 'a statement past statement_timeout is cancelled (57014)'
    : 'statement_timeout cannot interrupt a running statement on the embedded engine',
  async () => {
    await owner.query("set statement_timeout = '200ms'");
    const started = Date.now();
    const outcome = await owner.query('select pg_sleep(1)').then(
      () => 'completed',
      (err: Error & { code?: string }) => err.code,
    );
    const took = Date.now() - started;
    await owner.query('reset statement_timeout');
    if (backend === 'server') {
      expect(outcome).toBe('57014');
      expect(took).toBeLessThan(900);
    } else {
      expect(outcome).toBe('completed');
      expect(took).toBeGreaterThanOrEqual(950);
    }
  },
);

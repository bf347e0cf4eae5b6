// WORKERS=N (src/http/workers.ts): N gateway processes serve one port, on
// both backends (embedded, the workers reach the primary's engine through its
// socket). The pool settings are the whole gateway's, shared out; a worker
// that dies is replaced; SIGHUP replaces them one at a time with no request
// refused; SIGTERM stops them, then the primary; /metrics counts every
// worker's requests.
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseConfig } from '../../src/config/config.ts';
import { APP_ROLE } from '../../src/config/roles.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { workerShare } from '../../src/http/workers.ts';
import { createTestDatabase, migrateTestDatabase, serverTest, type TestDatabase } from '../support/backend.ts';
import { rng } from '../support/embeddings.ts';
import { freePort, postOnce, runCli, startGatewayProcess, waitFor, type GatewayProcess } from '../support/processes.ts';

const LONG = 240_000;
const SECRET = 'workers-test-secret-0123456789abcdefgh';
const token = signToken(SECRET, { role: APP_ROLE, tenant: 'acme', sub: 'workers' });
const PING = 'query WorkersPing { allDocuments(first: 1) { totalCount } }';

/** The pids of `pid`'s child processes (Linux: /proc/<pid>/stat's 4th field is the parent). */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The worker numbers on the gateway's "request" log lines so far. */
const workersInLog = (gw: GatewayProcess): Set<number> =>
  new Set(
    gw
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"request"'))
      .map((l) => (JSON.parse(l) as { worker?: number }).worker)
      .filter((w): w is number => w !== undefined),
  );

test('WORKERS defaults to 1, and to the cores in production on a server; each worker gets a share of the pool, never more than the whole', () => {
  expect(parseConfig({}).workers).toBe(1);
  const cores = availableParallelism();
  expect(parseConfig({ NODE_ENV: 'production', JWT_SECRET: SECRET, DATABASE_URL: 'postgresql://sheratan:x@127.0.0.1:5432/sheratan' }).workers).toBe(cores);
  // Embedded: one, whatever the cores (workers would reach the one engine through its socket: slower).
  expect(parseConfig({ NODE_ENV: 'production', JWT_SECRET: SECRET }).workers).toBe(1);
  expect(() => parseConfig({ WORKERS: '0' })).toThrow(/WORKERS/);
  expect(() => parseConfig({ WORKERS: 'two' })).toThrow(/WORKERS/);
  const next = rng(7);
  for (let i = 0; i < 500; i++) {
    const workers = 1 + Math.floor(next() * 16);
    const size = 1 + Math.floor(next() * 60);
    const overflow = Math.floor(next() * 60);
    const config = parseConfig({ WORKERS: String(workers), DB_POOL_SIZE: String(size), DB_MAX_OVERFLOW: String(overflow) });
    const share = workerShare(config);
    expect(share.poolSize).toBeGreaterThanOrEqual(1);
    expect(share.poolMaxOverflow).toBeGreaterThanOrEqual(0);
    // N workers together: within the whole gateway's budget (one connection each at least, when there are more workers than connections).
    expect(workers * (share.poolSize + share.poolMaxOverflow)).toBeLessThanOrEqual(Math.max(workers, size + overflow));
  }
});

describe('a gateway of two workers', () => {
  let database: TestDatabase;
  let gw: GatewayProcess;

  beforeAll(async () => {
    database = await createTestDatabase();
    await migrateTestDatabase(parseConfig(database.env));
  }, LONG);
  afterAll(() => database.drop());
  // A gateway of its own for each test (in any order: one stops it, others replace its workers), on the one database.
  beforeEach(async () => {
    gw = await startGatewayProcess({ ...database.env, JWT_SECRET: SECRET, WORKERS: '2', DB_POOL_SIZE: '4', DB_MAX_OVERFLOW: '2' });
    // /readyz answers once the first worker listens: wait for both.
    await waitFor(() => gw.output().includes('"msg":"gateway workers listening"'), 90_000, 'both workers to listen');
  }, LONG);
  afterEach(async () => {
    if (gw.child.exitCode === null && gw.child.signalCode === null) {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
  }, LONG);

  test(
    'two worker processes serve the port and share the requests; /metrics counts both workers',
    async () => {
      expect(childrenOf(gw.child.pid!)).toHaveLength(2);
      for (let i = 0; i < 40; i++) {
        const reply = await postOnce(gw.url, token, PING);
        expect(reply.status).toBe(200);
        expect(reply.body.data).toEqual({ allDocuments: { totalCount: 0 } });
      }
      await waitFor(() => workersInLog(gw).size === 2, 10_000, 'request lines from both workers');
      expect([...workersInLog(gw)].sort()).toEqual([1, 2]);
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      const counted = metrics
        .split('\n')
        .filter((l) => l.startsWith('sheratan_http_requests_total{') && l.includes('operation="WorkersPing"'))
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
      expect(counted).toBe(40);
    },
    LONG,
  );

  test(
    'a worker killed with SIGKILL is replaced by a new one; the port keeps answering',
    async () => {
      const [victim, survivor] = childrenOf(gw.child.pid!);
      process.kill(victim!, 'SIGKILL');
      await waitFor(
        () => {
          const now = childrenOf(gw.child.pid!);
          return now.length === 2 && !now.includes(victim!) && now.includes(survivor!);
        },
        60_000,
        'a replacement worker',
      );
      expect(gw.output()).toContain('"msg":"gateway worker died; starting another"');
      await waitFor(() => gw.output().split('"msg":"gateway listening"').length - 1 >= 3, 60_000, 'the replacement to listen');
      for (let i = 0; i < 10; i++) expect((await postOnce(gw.url, token, PING)).status).toBe(200);
    },
    LONG,
  );

  test(
    'SIGHUP replaces every worker one at a time while requests go on: none refused, none failed',
    async () => {
      const before = childrenOf(gw.child.pid!);
      const statuses: Array<number | string> = [];
      let done = false;
      const load = (async () => {
        while (!done)
          statuses.push(
            await postOnce(gw.url, token, PING).then(
              (r) => (r.body.errors ? 'errors' : r.status),
              (e: Error) => e.message,
            ),
          );
      })();
      gw.child.kill('SIGHUP');
      await waitFor(() => gw.output().split('"msg":"gateway worker replaced"').length - 1 >= 2, 120_000, 'both workers replaced');
      done = true;
      await load;
      const after = childrenOf(gw.child.pid!);
      expect(after).toHaveLength(2);
      expect(after.filter((p) => before.includes(p))).toEqual([]);
      expect(statuses.length).toBeGreaterThan(0);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
    },
    LONG,
  );

  test(
    'SIGTERM stops the workers, then the primary, which exits 0',
    async () => {
      const workers = childrenOf(gw.child.pid!);
      gw.child.kill('SIGTERM');
      const exit = await gw.exited;
      expect(exit.code).toBe(0);
      for (const pid of workers) expect(childrenOf(pid)).toEqual([]);
      expect(workers.every((pid) => !readdirSync('/proc').includes(String(pid)))).toBe(true);
    },
    LONG,
  );
});

serverTest('the embedded primary migrates before any worker starts, so a worker cannot meet an unmigrated database there')(
  'WORKERS=2 on a database not yet migrated: the workers cannot start, and the primary exits 1 with their reason (no restart loop)',
  async () => {
    const unmigrated = await createTestDatabase();
    try {
      const proc = runCli(['start'], { ...unmigrated.env, JWT_SECRET: SECRET, WORKERS: '2', PORT: String(await freePort()), LOG_LEVEL: 'info' });
      const exit = await proc.exited;
      expect(exit.code).toBe(1);
      expect(proc.output()).toContain('run the migrations (npm run db:migrate)');
      expect(proc.output()).toMatch(/gateway worker \d+ exited with code 1 before it listened/);
      expect(proc.output()).not.toContain('starting another');
    } finally {
      await unmigrated.drop();
    }
  },
  LONG,
);

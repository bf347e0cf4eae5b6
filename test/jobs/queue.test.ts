// The job queue over GraphQL: ordering, exclusive claims under concurrency,
// retries with backoff, stale locks, ownership (a job belongs to the subject
// that claimed it, whatever else knows its worker id), tenancy, the worker helper.
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { applyCurrentMigration } from '../support/current-migration.ts';
import { waitFor } from '../support/processes.ts';
import { indexScansDuring } from '../support/index-scans.ts';
import { runWorker } from '../../src/client/index.ts';

let h: Harness;
let owner: pg.Client;
beforeAll(async () => {
  h = await startHarness();
  await applyCurrentMigration(h);
  owner = await h.owner();
});
afterAll(() => h.stop());
beforeEach(async () => {
  await owner.query('delete from sheratan.jobs');
});

interface Job {
  rowId: string;
  jobType: string;
  status: string;
  priority: number;
  attempts: number;
  lastError: string | null;
  lockedBy: string | null;
  result: unknown;
  runAt: string;
}
const FIELDS = 'rowId jobType status priority attempts lastError lockedBy result runAt';

async function enqueue(jobType: string, extra: Record<string, unknown> = {}, token?: string): Promise<Job> {
  const res = await h.graphql<{ enqueueJob: { job: Job } }>(`mutation ($input: EnqueueJobInput!) { enqueueJob(input: $input) { job { ${FIELDS} } } }`, {
    variables: { input: { jobType, ...extra } },
    token,
  });
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.enqueueJob.job;
}
async function claim(workerId: string, jobTypes?: string[], token?: string): Promise<Job | null> {
  const res = await h.graphql<{ claimJob: { job: Job | null } }>(
    `mutation ($w: String!, $t: [String]) { claimJob(input: { workerId: $w, jobTypes: $t }) { job { ${FIELDS} } } }`,
    { variables: { w: workerId, t: jobTypes ?? null }, token },
  );
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.claimJob.job;
}
const finish = (op: 'completeJob' | 'failJob', id: string, workerId: string, extra: string, token?: string) =>
  h.graphql<{ completeJob: { job: Job }; failJob: { job: Job } }>(
    `mutation ($id: BigInt!, $w: String!) { ${op}(input: { jobId: $id, workerId: $w, ${extra} }) { job { ${FIELDS} } } }`,
    { variables: { id, w: workerId }, token },
  );
/** Another user of the same tenant as the default token's (alice). */
const bob = (): string => h.token('sheratan_app', 'acme', 'bob');

test('claims go to the highest priority, then the oldest due job; future jobs wait; none → null', async () => {
  const low = await enqueue('embed', { priority: 0 });
  const high = await enqueue('embed', { priority: 5 });
  const high2 = await enqueue('embed', { priority: 5 });
  await enqueue('embed', { priority: 9, runAt: new Date(Date.now() + 3600_000).toISOString() });
  await enqueue('other', { priority: 100 });
  const order = [await claim('w1', ['embed']), await claim('w1', ['embed']), await claim('w1', ['embed'])];
  expect(order.map((j) => j!.rowId)).toEqual([high.rowId, high2.rowId, low.rowId]);
  expect(order[0]).toMatchObject({ status: 'running', lockedBy: 'w1', attempts: 1 });
  expect(await claim('w1', ['embed'])).toBeNull();
});

test('concurrent claimers (each its own subject) over separate connections never get the same job and drain the queue', async () => {
  for (let i = 0; i < 40; i++) await enqueue('bulk', { priority: i % 3 });
  const claimed = new Map<string, string>();
  const claims: string[] = [];
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      const token = h.token('sheratan_app', 'acme', `user-${w}`);
      for (;;) {
        const job = await claim(`worker-${w}`, ['bulk'], token);
        if (!job) return;
        claims.push(job.rowId);
        claimed.set(job.rowId, `user-${w}`);
      }
    }),
  );
  expect(claims).toHaveLength(40);
  expect(new Set(claims).size).toBe(40);
  const rows = await owner.query<{ id: string; status: string; claimed_by: string }>(
    "select id::text, status, claimed_by from sheratan.jobs where job_type = 'bulk'",
  );
  expect(rows.rows.filter((r) => r.status === 'pending')).toEqual([]);
  // Each job belongs to the subject whose claim returned it.
  expect(Object.fromEntries(rows.rows.map((r) => [r.id, r.claimed_by]))).toEqual(Object.fromEntries(claimed));
});

test('a failed attempt is retried with exponential backoff (2 s, 4 s, 8 s) until maxAttempts, then stays failed', async () => {
  const job = await enqueue('flaky', { maxAttempts: 4 });
  for (let attempt = 1; attempt <= 3; attempt++) {
    if (attempt > 1) await owner.query('update sheratan.jobs set run_at = now() where id = $1', [job.rowId]);
    const claimed = await claim('w', ['flaky']);
    expect(claimed).toMatchObject({ rowId: job.rowId, attempts: attempt });
    const sent = Date.now();
    const failed = (await finish('failJob', claimed!.rowId, 'w', `error: "boom ${attempt}"`)).body.data!.failJob.job;
    const answered = Date.now();
    expect(failed).toMatchObject({ status: 'pending', lastError: `boom ${attempt}`, lockedBy: null, attempts: attempt });
    // Due 2^attempt s after the failure, which the database dated between
    // sending and the answer (one clock, the same machine; 5 ms for rounding).
    const runAt = Date.parse(failed.runAt);
    expect(runAt).toBeGreaterThanOrEqual(sent + 1000 * 2 ** attempt - 5);
    expect(runAt).toBeLessThanOrEqual(answered + 1000 * 2 ** attempt + 5);
  }
  expect(await claim('w', ['flaky'])).toBeNull(); // not due for 8 s
  await owner.query('update sheratan.jobs set run_at = now() where id = $1', [job.rowId]);
  const last = await claim('w', ['flaky']);
  expect(last!.attempts).toBe(4);
  const final = (await finish('failJob', last!.rowId, 'w', 'error: "boom 4"')).body.data!.failJob.job;
  expect(final).toMatchObject({ status: 'failed', lastError: 'boom 4', attempts: 4 });
});

test('a job whose worker holds it past JOB_LOCK_TIMEOUT becomes claimable again', async () => {
  // A gateway of its own with a one-second lock timeout (elsewhere the default, 600 s, holds).
  const quick = await startHarness({ JOB_LOCK_TIMEOUT: '1' });
  try {
    await applyCurrentMigration(quick);
    const call = <T>(query: string, variables: Record<string, unknown>) => quick.graphql<T>(query, { variables });
    const claimQ = `mutation ($w: String!) { claimJob(input: { workerId: $w, jobTypes: ["slow"] }) { job { ${FIELDS} } } }`;
    await call('mutation { enqueueJob(input: { jobType: "slow", maxAttempts: 3 }) { clientMutationId } }', {});
    const first = (await call<{ claimJob: { job: Job } }>(claimQ, { w: 'dead-worker' })).body.data!.claimJob.job;
    expect((await call<{ claimJob: { job: Job | null } }>(claimQ, { w: 'live-worker' })).body.data!.claimJob.job).toBeNull();
    // Claimable again once the lock is older than a second (asked until it is).
    let again!: Job;
    await waitFor(
      async () => {
        again = (await call<{ claimJob: { job: Job } }>(claimQ, { w: 'live-worker' })).body.data!.claimJob.job;
        return again !== null;
      },
      30_000,
      'the stale lock to be taken over',
    );
    expect(again).toMatchObject({ rowId: first.rowId, lockedBy: 'live-worker', attempts: 2 });
    expect(again.lastError).toMatch(/worker dead-worker held the job longer than/);
    // The dead worker's late completion is refused.
    const late = await call('mutation ($id: BigInt!) { completeJob(input: { jobId: $id, workerId: "dead-worker", result: {} }) { clientMutationId } }', {
      id: first.rowId,
    });
    expect(late.body.errors?.[0]?.message).toMatch(/is not running for worker dead-worker \(it is held by worker live-worker\)/);
  } finally {
    await quick.stop();
  }
});

test('only the worker holding a job may finish it; finishing a job that is not running changes nothing', async () => {
  const job = await enqueue('owned');
  const mine = await claim('owner-worker', ['owned']);
  const stolen = await finish('completeJob', mine!.rowId, 'thief', 'result: {}');
  expect(stolen.body.errors?.[0]?.message).toMatch(/not running for worker thief/);
  const done = (await finish('completeJob', mine!.rowId, 'owner-worker', 'result: { ok: true }')).body.data!.completeJob.job;
  expect(done).toMatchObject({ status: 'completed', result: { ok: true }, lockedBy: null });
  const again = await finish('completeJob', job.rowId, 'owner-worker', 'result: {}');
  expect(again.body.errors?.[0]?.message).toMatch(/is not running .* \(it is completed\)/);
  const row = await owner.query('select status, result from sheratan.jobs where id = $1', [job.rowId]);
  expect(row.rows[0]).toEqual({ status: 'completed', result: { ok: true } });
});

interface TypeRef {
  kind: string;
  name: string | null;
  ofType: TypeRef | null;
}
interface Introspected {
  name: string;
  fields: Array<{ name: string; type: TypeRef; args: Array<{ name: string; type: TypeRef }> }> | null;
  inputFields: Array<{ name: string; type: TypeRef }> | null;
}
const TYPE_REF = 'kind name ofType { kind name ofType { kind name ofType { kind name } } }';
const named = (t: TypeRef): string => t.name ?? named(t.ofType!);

/**
 * Every mutation that acts on jobs, from the schema itself: its payload has a
 * `job`, or its input names a `jobId`. A mutation added later is in the list
 * without anyone remembering to add it.
 */
async function jobMutations(): Promise<Array<{ name: string; inputType: string; inputFields: Array<{ name: string; type: TypeRef }> }>> {
  const res = await h.graphql<{ __schema: { mutationType: { name: string }; types: Introspected[] } }>(
    `{ __schema { mutationType { name } types { name fields { name type { ${TYPE_REF} } args { name type { ${TYPE_REF} } } } inputFields { name type { ${TYPE_REF} } } } } }`,
  );
  expect(res.body.errors).toBeUndefined();
  const types = new Map(res.body.data!.__schema.types.map((t) => [t.name, t]));
  const mutation = types.get(res.body.data!.__schema.mutationType.name)!;
  return mutation.fields!.flatMap((field) => {
    const input = field.args.find((a) => a.name === 'input');
    const inputType = input ? types.get(named(input.type)) : undefined;
    const payload = types.get(named(field.type));
    const actsOnJobs = payload?.fields?.some((f) => f.name === 'job') || inputType?.inputFields?.some((f) => f.name === 'jobId');
    return actsOnJobs && inputType ? [{ name: field.name, inputType: inputType.name, inputFields: inputType.inputFields! }] : [];
  });
}

test('a job belongs to the subject that claimed it: no job mutation of another user of the tenant, who knows its worker id, changes it', async () => {
  await enqueue('mine');
  const job = await claim('alice-worker', ['mine']);
  const row = async () =>
    (await owner.query('select status, locked_by, claimed_by, locked_at, attempts, result, last_error, run_at from sheratan.jobs where id = $1', [job!.rowId]))
      .rows[0];
  const before = await row();
  expect(before).toMatchObject({ status: 'running', locked_by: 'alice-worker', claimed_by: 'alice' });
  // Bob reads the worker id, as any user of the tenant can.
  const seen = await h.graphql<{ allJobs: { nodes: Array<{ rowId: string; lockedBy: string }> } }>('{ allJobs(first: 100) { nodes { rowId lockedBy } } }', {
    token: bob(),
  });
  expect(seen.body.errors).toBeUndefined();
  const workerId = seen.body.data!.allJobs.nodes.find((n) => n.rowId === job!.rowId)!.lockedBy;
  expect(workerId).toBe('alice-worker');

  const mutations = await jobMutations();
  expect(mutations.map((m) => m.name)).toEqual(expect.arrayContaining(['enqueueJob', 'claimJob', 'completeJob', 'failJob', 'cancelJob']));
  // What bob passes for each input field: alice's job and worker, a forged result.
  const values: Record<string, unknown> = {
    jobId: job!.rowId,
    workerId,
    result: { forged: true },
    error: 'forged',
    jobTypes: ['mine'],
    jobType: 'mine',
    job: { jobType: 'mine' },
  };
  for (const m of mutations) {
    const input: Record<string, unknown> = {};
    for (const f of m.inputFields) {
      if (f.name in values) input[f.name] = values[f.name];
      else if (f.type.kind === 'NON_NULL') throw new Error(`${m.name} needs ${f.name}: say here what another user would pass for it`);
    }
    const res = await h.graphql(`mutation ($input: ${m.inputType}!) { ${m.name}(input: $input) { clientMutationId } }`, { variables: { input }, token: bob() });
    expect({ mutation: m.name, job: await row() }).toEqual({ mutation: m.name, job: before });
    if ('jobId' in input)
      expect({ mutation: m.name, error: res.body.errors?.[0]?.message }).toEqual({
        mutation: m.name,
        error: expect.stringMatching(/claimed by another subject|not a pending job/),
      });
  }
  // Alice's worker still finishes it.
  const done = await finish('completeJob', job!.rowId, 'alice-worker', 'result: { ok: true }');
  expect(done.body.data!.completeJob.job).toMatchObject({ status: 'completed', result: { ok: true } });
});

test('claiming or finishing a job needs a "sub" claim; a token without one is told so and changes nothing', async () => {
  const anonymousUser = h.token('sheratan_app', 'acme', '');
  await enqueue('nosub');
  const refused = await h.graphql('mutation { claimJob(input: { workerId: "w", jobTypes: ["nosub"] }) { clientMutationId } }', { token: anonymousUser });
  expect(refused.body.errors?.[0]).toMatchObject({
    message: expect.stringMatching(/claiming a job needs a "sub" claim in the token/),
    extensions: { code: '42501' },
  });
  const job = await claim('w', ['nosub']);
  const finishRefused = await finish('failJob', job!.rowId, 'w', 'error: "x"', anonymousUser);
  expect(finishRefused.body.errors?.[0]?.message).toMatch(/completing or failing a job needs a "sub" claim in the token/);
  const row = await owner.query('select status, claimed_by, locked_by from sheratan.jobs where id = $1', [job!.rowId]);
  expect(row.rows[0]).toEqual({ status: 'running', claimed_by: 'alice', locked_by: 'w' });
  expect(() => runWorker({ url: `${h.url}/graphql`, token: anonymousUser, handler: async () => null, handleSignals: false })).toThrow(
    /the token has no "sub" claim/,
  );
});

test('pending jobs can be cancelled, running ones cannot', async () => {
  const a = await enqueue('c');
  const cancelled = await h.graphql<{ cancelJob: { job: Job } }>('mutation ($id: BigInt!) { cancelJob(input: { jobId: $id }) { job { status } } }', {
    variables: { id: a.rowId },
  });
  expect(cancelled.body.data!.cancelJob.job.status).toBe('cancelled');
  await enqueue('c');
  const running = await claim('w', ['c']);
  const refused = await h.graphql('mutation ($id: BigInt!) { cancelJob(input: { jobId: $id }) { clientMutationId } }', { variables: { id: running!.rowId } });
  expect(refused.body.errors?.[0]?.message).toMatch(/is not a pending job in this tenant/);
});

test("another tenant can neither see, claim, finish nor cancel this tenant's jobs", async () => {
  const job = await enqueue('private');
  const globex = h.token('sheratan_app', 'globex');
  expect(await claim('g', ['private'], globex)).toBeNull();
  const seen = await h.graphql<{ allJobs: { totalCount: number } }>('{ allJobs { totalCount } }', { token: globex });
  expect(seen.body.data!.allJobs.totalCount).toBe(0);
  const cancel = await h.graphql('mutation ($id: BigInt!) { cancelJob(input: { jobId: $id }) { clientMutationId } }', {
    variables: { id: job.rowId },
    token: globex,
  });
  expect(cancel.body.errors?.[0]?.message).toMatch(/not a pending job in this tenant/);
  const readonlyClaim = await h.graphql('mutation { claimJob(input: { workerId: "r" }) { clientMutationId } }', {
    token: h.token('sheratan_readonly', 'acme'),
  });
  expect(readonlyClaim.body.errors?.[0]?.message).toMatch(/permission denied/);
});

test('every transition leaves an audit row', async () => {
  const job = await enqueue('audited');
  const c = await claim('w', ['audited']);
  await finish('completeJob', c!.rowId, 'w', 'result: {}');
  const audit = await owner.query("select action, details ->> 'status' as status from sheratan.audit_logs where resource = 'jobs/' || $1 order by id", [
    job.rowId,
  ]);
  expect(audit.rows).toEqual([
    { action: 'insert', status: 'pending' },
    { action: 'update', status: 'running' },
    { action: 'update', status: 'completed' },
  ]);
});

test('reporting counts jobs by status with groupedAggregates', async () => {
  await enqueue('r');
  await enqueue('r');
  const c = await claim('w', ['r']);
  await finish('completeJob', c!.rowId, 'w', 'result: {}');
  const res = await h.graphql<{ allJobs: { groupedAggregates: Array<{ keys: string[]; distinctCount: { rowId: string } }> } }>(
    '{ allJobs { groupedAggregates(groupBy: STATUS) { keys distinctCount { rowId } } } }',
    { path: '/reporting/graphql', token: h.token('sheratan_readonly', 'acme') },
  );
  expect(res.body.errors).toBeUndefined();
  const counts = Object.fromEntries(res.body.data!.allJobs.groupedAggregates.map((g) => [g.keys[0], Number(g.distinctCount.rowId)]));
  expect(counts).toEqual({ completed: 1, pending: 1 });
});

test('claimJob (the real function, as the caller) is served by the partial index on pending jobs, with and without job types (20k jobs)', async () => {
  await owner.query(`insert into sheratan.jobs (tenant, job_type, priority, status)
    select 'acme', 'j' || (i % 5), i % 10, case when i % 4 = 0 then 'pending' else 'completed' end from generate_series(1, 20000) i`);
  await owner.query('analyze sheratan.jobs');
  // idx_scan of the index moves only if the claim's own statement used it (index-scans.ts).
  expect(await indexScansDuring(owner, 'jobs_claimable_idx', () => claim('w-typed', ['j1']))).toBeGreaterThan(0);
  expect(await indexScansDuring(owner, 'jobs_claimable_idx', () => claim('w-any'))).toBeGreaterThan(0);
});

test('runWorker claims, runs, completes or fails jobs, and stops cleanly', async () => {
  for (let i = 0; i < 12; i++) await enqueue('work', { payload: { n: i }, maxAttempts: 1 });
  const seen: number[] = [];
  const worker = runWorker({
    url: `${h.url}/graphql`,
    token: h.token(),
    jobTypes: ['work'],
    concurrency: 3,
    pollIntervalMs: 50,
    handleSignals: false,
    handler: async (job) => {
      const n = (job.payload as { n: number }).n;
      seen.push(n);
      if (n % 4 === 0) throw new Error(`cannot do ${n}`);
      return { doubled: n * 2 };
    },
  });
  const deadline = Date.now() + 20_000;
  while (seen.length < 12 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await worker.stop();
  const rows = await owner.query(
    "select payload ->> 'n' as n, status, result, last_error from sheratan.jobs where job_type = 'work' order by (payload ->> 'n')::int",
  );
  expect(rows.rows).toHaveLength(12);
  for (const r of rows.rows) {
    const n = Number(r.n);
    if (n % 4 === 0) expect(r).toMatchObject({ status: 'failed', last_error: `cannot do ${n}` });
    else expect(r).toMatchObject({ status: 'completed', result: { doubled: n * 2 } });
  }
});

test("a claim that names no job types never takes the store's own embed_document jobs; one that names it does", async () => {
  // Enqueued as the text pipeline does (highest priority, oldest), beside a job of the tenant's own.
  await enqueue('embed_document', { priority: 100 });
  const own = await enqueue('thumbnail');
  expect((await claim('any-type-worker'))?.rowId).toBe(own.rowId);
  expect(await claim('any-type-worker')).toBeNull();
  expect((await claim('embedding-worker', ['embed_document']))?.jobType).toBe('embed_document');
});

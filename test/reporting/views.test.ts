// Issue 29: the reporting views (schema sheratan_reporting). Generated
// activity of two tenants over five days; each view read as a reporting
// login (SQL, in several time zones) and as a read-only token
// (/reporting/graphql, with aggregates) must give exactly the figures
// computed from that activity in JavaScript, for the reader's tenant only.
// The class of the defect guarded: a view that runs with its owner's rights
// (who bypasses row-level security) shows every tenant; so every view of the
// schema is enumerated from the catalog, must be security_invoker, and must
// show its reader nothing of another tenant.
import pg from 'pg';
import { READONLY_ROLE } from '../../src/config/roles.ts';
import { startReporting, type ReportingHarness, type ReportingLoginInfo } from '../support/reporting.ts';
import {
  expectedCoverage,
  expectedIngest,
  expectedJobDaily,
  expectedJobQueue,
  expectedSearches,
  expectFigures,
  generateActivity,
  hourIn,
  keyed,
  searchMode,
  sourceFilter,
  TENANTS,
  writeActivity,
  type Activity,
} from '../support/reporting-data.ts';

let h: ReportingHarness;
let activity: Activity;
const logins: Record<string, ReportingLoginInfo> = {};

beforeAll(async () => {
  h = await startReporting();
  activity = generateActivity(29);
  await writeActivity(await h.owner(), activity);
  for (const tenant of TENANTS) logins[tenant] = h.login(`${tenant}_views`, tenant);
}, 300_000);
afterAll(() => h?.stop());

/** Runs `fn` on a connection of the tenant's reporting login, in `timeZone` (as a driver sends it at start-up). */
async function asLogin<T>(tenant: string, timeZone: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: logins[tenant]!.url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    // SET rather than a start-up option: what this file checks is the views, not the engine's start-up parameters.
    await client.query(`set time zone '${timeZone}'`);
    return await fn(client);
  } finally {
    await client.end();
  }
}

const SEARCH_COLUMNS = [
  'searches',
  'zero_result_searches',
  'zero_result_rate',
  'mean_latency_ms',
  'p50_latency_ms',
  'p95_latency_ms',
  'p99_latency_ms',
  'max_latency_ms',
  'mean_top_similarity',
  'mean_result_count',
];

// Zones with a half-hour offset (hours cut at :30 UTC) and one that changes to daylight-saving time in the data's span.
describe.each(['UTC', 'Asia/Kolkata', 'America/New_York'])('in time zone %s, a reporting login reads its own tenant', (timeZone) => {
  test.each(TENANTS)('search_daily and search_hourly (%s)', async (tenant) => {
    await asLogin(tenant, timeZone, async (c) => {
      const daily = await c.query("select day::text as period, mode, coalesce(source_filter, '') as source, * from sheratan_reporting.search_daily");
      expectFigures(
        keyed(daily.rows, (r) => `${r.period}|${r.mode}|${r.source}`, SEARCH_COLUMNS),
        expectedSearches(activity, tenant, timeZone, 'day'),
        'search_daily',
      );
      const hourly = await c.query(
        `select to_char(hour, 'YYYY-MM-DD"T"HH24') as period, mode, coalesce(source_filter, '') as source, * from sheratan_reporting.search_hourly`,
      );
      expectFigures(
        keyed(hourly.rows, (r) => `${r.period}|${r.mode}|${r.source}`, SEARCH_COLUMNS),
        expectedSearches(activity, tenant, timeZone, 'hour'),
        'search_hourly',
      );
      expect(new Set([...daily.rows, ...hourly.rows].map((r) => r.tenant))).toEqual(new Set([tenant]));
    });
  });

  test.each(TENANTS)('ingest_daily and job_daily (%s)', async (tenant) => {
    await asLogin(tenant, timeZone, async (c) => {
      const ingest = await c.query('select day::text as period, * from sheratan_reporting.ingest_daily');
      expectFigures(
        keyed(ingest.rows, (r) => String(r.period), ['documents', 'document_bytes', 'chunks', 'embedded_chunks', 'chunk_bytes', 'chunk_tokens']),
        expectedIngest(activity, tenant, timeZone),
        'ingest_daily',
      );
      const jobs = await c.query('select day::text as period, * from sheratan_reporting.job_daily');
      expectFigures(
        keyed(jobs.rows, (r) => `${r.period}|${r.job_type}`, ['enqueued', 'completed', 'failed', 'cancelled', 'failure_rate', 'mean_attempts']),
        expectedJobDaily(activity, tenant, timeZone),
        'job_daily',
      );
    });
  });
});

test.each(TENANTS)('embedding_coverage, job_queue and ann_index_usage (%s)', async (tenant) => {
  await asLogin(tenant, 'UTC', async (c) => {
    const coverage = await c.query("select coalesce(model, '') as key, * from sheratan_reporting.embedding_coverage");
    expectFigures(
      keyed(coverage.rows, (r) => String(r.key), ['chunks', 'embedded', 'missing', 'coverage']),
      expectedCoverage(activity, tenant),
      'embedding_coverage',
    );
    const queue = await c.query('select * from sheratan_reporting.job_queue');
    expectFigures(
      keyed(queue.rows, (r) => String(r.job_type), ['pending', 'due', 'running', 'completed', 'failed', 'cancelled']),
      expectedJobQueue(activity, tenant, new Date()),
      'job_queue',
    );
    for (const r of queue.rows) {
      const due = activity.jobs.filter((j) => j.tenant === tenant && j.job_type === r.job_type && j.status === 'pending' && j.run_at <= new Date());
      const oldest = Math.min(...due.map((j) => j.run_at.getTime()));
      if (due.length === 0) expect(r.oldest_due_seconds).toBeNull();
      else expect(Math.abs(r.oldest_due_seconds - (Date.now() - oldest) / 1000)).toBeLessThan(600);
    }
    const index = await c.query('select * from sheratan_reporting.ann_index_usage');
    expect(index.rows).toEqual([expect.objectContaining({ index_name: 'document_chunks_embedding_idx', column_name: 'embedding' })]);
    expect(index.rows[0].method).toMatch(/^(hnsw|ivfflat)$/);
    expect(Number(index.rows[0].tenant_entries)).toBe(activity.chunks.filter((x) => x.tenant === tenant && x.embedded).length);
  });
});

test("ann_index_usage's size and counters are the index's own (the same for every tenant: they are not per tenant)", async () => {
  const owner = await h.owner();
  const { rows: truth } = await owner.query(`
    select pg_relation_size('sheratan.document_chunks_embedding_idx') as size_bytes,
           (select idx_scan from pg_stat_user_indexes where indexrelid = 'sheratan.document_chunks_embedding_idx'::regclass) as scans`);
  for (const tenant of TENANTS) {
    const row = await asLogin(tenant, 'UTC', async (c) => (await c.query('select size_bytes, scans from sheratan_reporting.ann_index_usage')).rows[0]);
    expect(Number(row.size_bytes)).toBe(Number(truth[0].size_bytes));
    expect(Number(row.size_bytes)).toBeGreaterThan(0);
    // Counters move with other sessions' scans; no test here searches in between.
    expect(Number(row.scans)).toBe(Number(truth[0].scans ?? 0));
  }
});

test('every view of sheratan_reporting runs as its caller (security_invoker) and shows a login nothing of another tenant', async () => {
  const owner = await h.owner();
  const { rows: views } = await owner.query(`
    select c.relname, coalesce('security_invoker=true' = any (c.reloptions), false) as invoker,
           exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant' and not a.attisdropped) as has_tenant
      from pg_class c where c.relnamespace = 'sheratan_reporting'::regnamespace and c.relkind in ('v', 'm', 'r', 'p', 'f') order by 1`);
  expect(views.map((v) => v.relname)).toEqual(
    expect.arrayContaining([
      'ann_index_usage',
      'embedding_coverage',
      'ingest_daily',
      'job_daily',
      'job_queue',
      'search_daily',
      'search_events',
      'search_hourly',
    ]),
  );
  for (const v of views) {
    expect({ view: v.relname, invoker: v.invoker }).toEqual({ view: v.relname, invoker: true });
    for (const tenant of TENANTS) {
      const seen = await asLogin(tenant, 'UTC', async (c) => {
        const { rows } = await c.query(
          `select count(*)::int as n ${v.has_tenant ? ', array_agg(distinct tenant) as tenants' : ''} from sheratan_reporting.${c.escapeIdentifier(v.relname)}`,
        );
        return rows[0];
      });
      expect(seen.n).toBeGreaterThan(0);
      if (v.has_tenant) expect({ view: v.relname, tenants: seen.tenants }).toEqual({ view: v.relname, tenants: [tenant] });
    }
  }
});

test('a view without security_invoker shows a login every tenant (its owner bypasses row-level security): what the check above catches', async () => {
  const owner = await h.owner();
  await owner.query(
    `create view sheratan_reporting.leaky as select tenant from sheratan.search_logs; grant select on sheratan_reporting.leaky to ${READONLY_ROLE}`,
  );
  try {
    const seen = await asLogin('acme', 'UTC', async (c) =>
      (await c.query('select distinct tenant from sheratan_reporting.leaky order by 1')).rows.map((r) => r.tenant),
    );
    // Every tenant's rows (other tests of this file, in any order, may have added tenants of their own).
    expect(seen).toEqual(expect.arrayContaining([...TENANTS]));
    expect(seen.length).toBeGreaterThan(1);
  } finally {
    await owner.query('drop view sheratan_reporting.leaky');
  }
});

test('a reporting login cannot write through the views, nor widen what it sees by claims or roles', async () => {
  await asLogin('acme', 'UTC', async (c) => {
    await expect(c.query('insert into sheratan_reporting.search_events (k) values (1)')).rejects.toThrow(/permission denied/);
    await expect(c.query('delete from sheratan_reporting.search_events')).rejects.toThrow(/permission denied/);
    await expect(c.query('create view sheratan_reporting.mine as select 1')).rejects.toThrow(/permission denied/);
    await c.query("set jwt.claims.tenant = 'globex'");
    const { rows } = await c.query('select distinct tenant from sheratan_reporting.search_events');
    expect(rows).toEqual([{ tenant: 'acme' }]);
  });
});

test('real searches land in search_events with their mode and source filter', async () => {
  const token = h.token('sheratan_app', 'initech');
  const embedding = Array.from({ length: 384 }, (_, i) => (i === 1 ? 1 : 0.01));
  const ingest = await h.graphql('mutation ($c: [ChunkInput]!) { ingestDocument(input: { title: "t", source: "wiki", chunks: $c }) { clientMutationId } }', {
    token,
    path: '/graphql',
    variables: { c: [{ content: 'reporting views', embedding }] },
  });
  expect(ingest.body.errors).toBeUndefined();
  const searches = [
    ['searchDocumentChunks(embedding: $e, filter: { sources: ["wiki"] }) { distance }', { sources: ['wiki'] }],
    ['searchDocumentChunks(embedding: $e, diversity: { lambda: 0.5 }) { distance }', { diversity: {} }],
    ['hybridSearchDocumentChunks(queryText: "reporting", embedding: $e) { score }', { mode: 'hybrid' }],
  ] as const;
  for (const [field] of searches) {
    const res = await h.graphql(`query ($e: Vector!) { ${field} }`, { token, path: '/graphql', variables: { e: embedding } });
    expect(res.body.errors).toBeUndefined();
  }
  const events = await h.graphql<{
    allSearchEvents: { nodes: Array<{ mode: string; sourceFilter: string | null; resultCount: number; zeroResult: boolean }> };
  }>('{ allSearchEvents(orderBy: ROW_ID_ASC, first: 10) { nodes { mode sourceFilter resultCount zeroResult } } }', {
    token: h.token('sheratan_readonly', 'initech'),
  });
  expect(events.body.errors).toBeUndefined();
  expect(events.body.data!.allSearchEvents.nodes).toEqual(
    searches.map(([, filters]) => ({ mode: searchMode(filters), sourceFilter: sourceFilter(filters), resultCount: 1, zeroResult: false })),
  );
});

describe('/reporting/graphql with a read-only token', () => {
  /** The time zone the gateway's sessions read in (the server's default). */
  let zone: string;
  beforeAll(async () => {
    const client = new pg.Client(h.gateway.db.authUrl);
    await client.connect();
    zone = (await client.query<{ tz: string }>('show timezone')).rows[0]!.tz;
    await client.end();
  });

  test.each(TENANTS)('searchDailies and searchHourlies give the figures of its tenant only (%s)', async (tenant) => {
    const res = await h.graphql<{
      allSearchDailies: { nodes: Array<Record<string, unknown>> };
      allSearchHourlies: { nodes: Array<Record<string, unknown>> };
    }>(
      `{ allSearchDailies(first: 1000) { nodes { tenant day mode sourceFilter searches zeroResultSearches zeroResultRate meanLatencyMs p50LatencyMs p95LatencyMs p99LatencyMs maxLatencyMs meanTopSimilarity meanResultCount } }
         allSearchHourlies(first: 1000) { nodes { tenant hour mode sourceFilter searches p50LatencyMs p95LatencyMs p99LatencyMs zeroResultRate } } }`,
      { token: h.token('sheratan_readonly', tenant) },
    );
    expect(res.body.errors).toBeUndefined();
    const snake = (n: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(n).map(([k, v]) => [k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`).replace(/(\d+)/, '$1'), v]));
    const daily = res.body.data!.allSearchDailies.nodes.map(snake);
    expect(new Set(daily.map((n) => n.tenant))).toEqual(new Set([tenant]));
    expectFigures(
      keyed(daily, (r) => `${r.day}|${r.mode}|${r.source_filter ?? ''}`, SEARCH_COLUMNS),
      expectedSearches(activity, tenant, zone, 'day'),
      'allSearchDailies',
    );
    const hourly = res.body.data!.allSearchHourlies.nodes.map(snake);
    const expectedHourly = expectedSearches(activity, tenant, zone, 'hour');
    expectFigures(
      keyed(hourly, (r) => `${hourIn(new Date(String(r.hour)), zone)}|${r.mode}|${r.source_filter ?? ''}`, [
        'searches',
        'p50_latency_ms',
        'p95_latency_ms',
        'p99_latency_ms',
        'zero_result_rate',
      ]),
      new Map(
        [...expectedHourly].map(([k, f]) => [
          k,
          {
            searches: f.searches!,
            p50_latency_ms: f.p50_latency_ms!,
            p95_latency_ms: f.p95_latency_ms!,
            p99_latency_ms: f.p99_latency_ms!,
            zero_result_rate: f.zero_result_rate!,
          },
        ]),
      ),
      'allSearchHourlies',
    );
  });

  test.each(TENANTS)('aggregates and groupedAggregates over the views (%s)', async (tenant) => {
    const res = await h.graphql<{
      allSearchEvents: {
        aggregates: { sum: { resultCount: string }; average: { latencyMs: number }; distinctCount: { day: string } };
        groupedAggregates: Array<{ keys: string[]; sum: { resultCount: string }; max: { latencyMs: number } }>;
      };
      allJobDailies: { aggregates: { sum: { enqueued: string; failed: string; completed: string } } };
    }>(
      `{ allSearchEvents { aggregates { sum { resultCount } average { latencyMs } distinctCount { day } }
                           groupedAggregates(groupBy: [MODE]) { keys sum { resultCount } max { latencyMs } } }
         allJobDailies { aggregates { sum { enqueued failed completed } } } }`,
      { token: h.token('sheratan_readonly', tenant) },
    );
    expect(res.body.errors).toBeUndefined();
    const mine = activity.searches.filter((s) => s.tenant === tenant);
    const { aggregates, groupedAggregates } = res.body.data!.allSearchEvents;
    expect(Number(aggregates.sum.resultCount)).toBe(mine.reduce((a, s) => a + s.result_count, 0));
    expect(aggregates.average.latencyMs).toBeCloseTo(mine.reduce((a, s) => a + s.latency_ms, 0) / mine.length, 9);
    expect(Number(aggregates.distinctCount.day)).toBe(new Set(mine.map((s) => new Intl.DateTimeFormat('en-CA', { timeZone: zone }).format(s.created_at))).size);
    const modes = new Map<string, { sum: number; max: number }>();
    for (const s of mine) {
      const m = modes.get(searchMode(s.filters)) ?? { sum: 0, max: -Infinity };
      modes.set(searchMode(s.filters), { sum: m.sum + s.result_count, max: Math.max(m.max, s.latency_ms) });
    }
    expect(new Map(groupedAggregates.map((g) => [g.keys[0]!, { sum: Number(g.sum.resultCount), max: g.max.latencyMs }]))).toEqual(modes);
    const jobs = activity.jobs.filter((j) => j.tenant === tenant);
    expect(res.body.data!.allJobDailies.aggregates.sum).toEqual({
      enqueued: String(jobs.length),
      failed: String(jobs.filter((j) => j.status === 'failed').length),
      completed: String(jobs.filter((j) => j.status === 'completed').length),
    });
  });

  test('the views are on the reporting endpoint only, read-only, and refused without a token', async () => {
    const api = await h.graphql('{ allSearchDailies { totalCount } }', { token: h.token('sheratan_app', 'acme'), path: '/graphql' });
    expect(api.body.errors?.[0]?.message).toMatch(/Cannot query field "allSearchDailies"/);
    const intro = await h.graphql<{ __schema: { mutationType: null } }>('{ __schema { mutationType { name } } }', {
      token: h.token('sheratan_readonly', 'acme'),
    });
    expect(intro.body.data!.__schema.mutationType).toBeNull();
    const res = await fetch(`${h.gateway.url}/reporting/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ allSearchDailies { totalCount } }' }),
    });
    expect(res.status).toBe(401);
  });
});

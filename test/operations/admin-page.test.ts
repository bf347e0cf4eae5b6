// The operator page (/admin, issue 27 part 3) in a real headless Chromium
// (Debian's chromium, driven with puppeteer-core), on either backend: the
// page loads without console errors, its four charts are SVG with the
// structure their data implies (series, points, bars, axes, titles), a
// screenshot is a PNG, the live panel follows a job enqueued after the page
// loaded, and a request without the admin token (none, a tenant's, a wrong
// one, an admin claim signed with the tenants' key) gets a 401/403 and no
// page. The search analytics come from real searches over GraphQL and from
// search_logs rows of three tenants spread over the last hours. The token
// `npm run token -- --admin` prints (the CLI as a process) opens the page.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import pg from 'pg';
import jwt from 'jsonwebtoken';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { setLogLevel } from '../../src/config/log.ts';
import { APP_ROLE } from '../../src/config/roles.ts';
import { startGateway, type RunningGateway } from '../../src/http/start.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { mountAdminPage } from '../../src/admin/routes.ts';
import { ADMIN_AUDIENCE, signAdminToken } from '../../src/admin/auth.ts';
import { createTestDatabase, TEST_ENGINE_ENV, type TestDatabase } from '../support/backend.ts';
import { migrateWithCurrent } from '../support/current-migration.ts';
import { topicalVectors } from '../support/embeddings.ts';
import { CLI } from '../support/processes.ts';

process.env.GRAPHILE_ENV ??= 'test';

const CHROMIUM = '/usr/bin/chromium';
// CI installs it (scripts/install-browser.sh); a machine without it skips, saying why.
const browserTest: jest.It = existsSync(CHROMIUM)
  ? test
  : (Object.assign(
      (name: string, ...rest: unknown[]) =>
        (test.skip as (...a: unknown[]) => void)(`${name} [skipped: no ${CHROMIUM}; run scripts/install-browser.sh]`, ...rest),
      test,
    ) as jest.It);

const ADMIN_SECRET = 'sheratan-test-admin-secret-0123456789abcdef';
const DIM = 384;

let database: TestDatabase;
let config: Config;
let running: RunningGateway;
let owner: pg.Client;
let browser: Browser | undefined;
let adminToken: string;
let tenantToken: string;

async function graphql(query: string, variables: Record<string, unknown>): Promise<{ data?: Record<string, unknown>; errors?: unknown[] }> {
  const res = await fetch(`${running.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tenantToken}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as never;
}

beforeAll(async () => {
  database = await createTestDatabase();
  config = parseConfig({ ...database.env, ...TEST_ENGINE_ENV, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ADMIN_JWT_SECRET: ADMIN_SECRET });
  setLogLevel(config.logLevel);
  try {
    await migrateWithCurrent(config);
    running = await startGateway(config, { port: 0, addRoutes: mountAdminPage });
  } catch (err) {
    await database.drop();
    throw err;
  }
  adminToken = signAdminToken(ADMIN_SECRET, { sub: 'operator' });
  tenantToken = signToken(running.config.jwtSecret!, { role: APP_ROLE, tenant: 'acme', sub: 'alice' });
  owner = new pg.Client(running.db.ownerUrl);
  await owner.connect();

  // Real searches of tenant acme: one document per source, then searches limited to a source.
  const vectors = topicalVectors(12, DIM, 7, 3, 0.9);
  for (const [d, source] of ['wiki', 'mail', 'docs'].entries()) {
    const res = await graphql('mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { rowId } } }', {
      input: {
        title: `doc ${d}`,
        content: `about ${source}`,
        source,
        chunks: vectors.slice(d * 4, d * 4 + 4).map((embedding, i) => ({ content: `${source} ${i}`, embedding })),
      },
    });
    expect(res.errors).toBeUndefined();
  }
  for (const source of ['wiki', 'wiki', 'mail']) {
    const res = await graphql(
      'query ($e: Vector!, $f: DocumentChunkSearchFilter) { searchDocumentChunks(embedding: $e, first: 3, filter: $f) { similarity } }',
      {
        e: vectors[0],
        f: { sources: [source] },
      },
    );
    expect(res.errors).toBeUndefined();
  }
  // And the log of three tenants over the last 20 hours, as searches leave it: some found nothing.
  await owner.query(`
    insert into sheratan.search_logs (query_text, k, filters, result_count, top_similarity, latency_ms, user_id, tenant, created_at)
    select case when i % 5 = 0 then 'no such thing ' || (i % 3) end, 10,
           jsonb_build_object('sources', jsonb_build_array(case i % 3 when 0 then 'wiki' when 1 then 'tickets' else 'mail' end)),
           case when i % 5 = 0 then 0 else 1 + i % 10 end, 0.8, 2 + (i % 17) * 1.5, 'u', (array['acme', 'globex', 'initech'])[1 + i % 3],
           now() - make_interval(mins => i * 20)
      from generate_series(1, 60) i`);
  if (existsSync(CHROMIUM)) {
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await owner?.end().catch(() => undefined);
  await running?.stop();
  await database?.drop();
});

/** A page that sends `authorization` with every request it makes (the page itself and its live stream). */
async function openPage(authorization: string | null): Promise<{ page: Page; errors: string[] }> {
  const page = await browser!.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  if (authorization) await page.setExtraHTTPHeaders({ authorization });
  return { page, errors };
}

interface ChartShape {
  kind: string | null;
  title: string | null;
  xAxis: number;
  yAxis: number;
  yTicks: number;
  series: Array<{ name: string | null; lines: number; points: number; bars: number }>;
}

/** The structure of the chart inside `#id`, read from the DOM. */
function chartShape(page: Page, id: string): Promise<ChartShape> {
  return page.$eval(`#${id} svg.chart`, (svg) => ({
    kind: svg.getAttribute('data-chart'),
    title: svg.querySelector(':scope > title')?.textContent ?? null,
    xAxis: svg.querySelectorAll('g.x-axis').length,
    yAxis: svg.querySelectorAll('g.y-axis').length,
    yTicks: svg.querySelectorAll('g.y-axis g.tick').length,
    series: [...svg.querySelectorAll('g.series')].map((g) => ({
      name: g.getAttribute('data-series'),
      lines: g.querySelectorAll('path.line').length,
      points: g.querySelectorAll('circle.point').length,
      bars: g.querySelectorAll('rect.bar').length,
    })),
  }));
}

browserTest('the page loads without console errors and draws its four charts from the search log', async () => {
  // What the charts must show, asked of the database directly.
  const buckets = Number(
    (
      await owner.query(
        `select count(distinct floor(extract(epoch from created_at) / 1800)) as n from sheratan.search_logs where created_at >= now() - interval '24 hours'`,
      )
    ).rows[0].n,
  );
  const counts = Number((await owner.query('select count(distinct result_count) as n from sheratan.search_logs')).rows[0].n);
  const { page, errors } = await openPage(`Bearer ${adminToken}`);
  const res = await page.goto(`${running.url}/admin`, { waitUntil: 'load' });
  expect(res!.status()).toBe(200);
  expect(res!.headers()['content-security-policy']).toContain("default-src 'none'");
  expect(await page.title()).toBe('Sheratan Store · operator');

  const latency = await chartShape(page, 'chart-latency');
  expect(latency).toMatchObject({ kind: 'line', title: 'Search latency percentiles', xAxis: 1, yAxis: 1 });
  expect(latency.yTicks).toBeGreaterThanOrEqual(2);
  // A 24-hour window has 30-minute buckets: one point per bucket with searches, in each of three lines.
  expect(latency.series.map((s) => s.name)).toEqual(['p50', 'p95', 'p99']);
  for (const s of latency.series) expect(s).toMatchObject({ lines: 1, points: buckets });

  const searches = await chartShape(page, 'chart-searches');
  expect(searches.series.map((s) => [s.name, s.lines, s.points])).toEqual([
    ['searches', 1, buckets],
    ['zero results', 1, buckets],
  ]);

  const results = await chartShape(page, 'chart-result-counts');
  expect(results).toMatchObject({ kind: 'bar', title: 'Results per search', xAxis: 1, yAxis: 1 });
  expect(results.series).toEqual([{ name: 'searches', lines: 0, points: 0, bars: counts }]);

  const sources = await chartShape(page, 'chart-sources');
  expect(sources.series.map((s) => [s.name, s.bars])).toEqual([
    ['searches', 3],
    ['zero results', 3],
  ]);
  const sourceNames = await page.$$eval('#chart-sources g.x-axis g.tick title', (ts) => ts.map((t) => t.textContent));
  // wiki: 20 logged and 2 real searches; tickets and mail 20 logged each (mail one more, real).
  expect(sourceNames).toEqual(['wiki', 'mail', 'tickets']);

  // Doctor's checks, the ANN index, the zero-result queries of every tenant.
  expect(await page.$$eval('#doctor tr.check', (rows) => rows.length)).toBeGreaterThan(5);
  expect(await page.$eval('#ann-index', (t) => t.textContent)).toContain('hnsw');
  expect(Number(await page.$eval('#ann-size', (t) => t.getAttribute('data-bytes')))).toBeGreaterThan(0);
  const zeroTenants = await page.$$eval('#zero-result-queries tr td:first-child', (tds) => [...new Set(tds.map((td) => td.textContent))].sort());
  expect(zeroTenants).toEqual(['acme', 'globex', 'initech']);

  const png = await page.screenshot({ fullPage: true, type: 'png' });
  expect(Buffer.from(png).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  expect(png.length).toBeGreaterThan(10_000);
  expect(errors).toEqual([]);
  await page.close();
});

browserTest('the live panel follows the job queue without a reload', async () => {
  const { page, errors } = await openPage(`Bearer ${adminToken}`);
  await page.goto(`${running.url}/admin?hours=1`, { waitUntil: 'load' });
  const before = Number(await page.$eval('#jobs-pending', (td) => td.textContent));
  const enqueued = await graphql('mutation { enqueueJob(input: { jobType: "admin-page-test", payload: {} }) { job { rowId } } }', {});
  expect(enqueued.errors).toBeUndefined();
  // The next live event (every 2 s) shows it.
  await page.waitForFunction((n) => Number(document.getElementById('jobs-pending')!.textContent) === n, { timeout: 30_000 }, before + 1);
  expect(Number(await page.$eval('#live', (d) => (d as HTMLElement).dataset.updates))).toBeGreaterThanOrEqual(1);
  expect(errors).toEqual([]);
  await page.close();
});

browserTest('without the admin token the browser gets a 401/403 and nothing of the page', async () => {
  const forged = jwt.sign({ admin: true }, running.config.jwtSecret!, { algorithm: 'HS256', audience: ADMIN_AUDIENCE, expiresIn: '1h' });
  const noAdminClaim = jwt.sign({ sub: 'x' }, ADMIN_SECRET, { algorithm: 'HS256', audience: ADMIN_AUDIENCE, expiresIn: '1h' });
  const cases: Array<[string, string | null, number, string]> = [
    ['no token', null, 401, 'ADMIN_TOKEN_REQUIRED'],
    ["a tenant's token", `Bearer ${tenantToken}`, 401, 'INVALID_ADMIN_TOKEN'],
    ['a wrong token', 'Bearer not-a-token', 401, 'INVALID_ADMIN_TOKEN'],
    ['an admin claim signed with JWT_SECRET', `Bearer ${forged}`, 401, 'INVALID_ADMIN_TOKEN'],
    ['an admin-key token without the admin claim', `Bearer ${noAdminClaim}`, 403, 'NOT_ADMIN'],
    ["a tenant's token as Basic's password", `Basic ${Buffer.from(`x:${tenantToken}`).toString('base64')}`, 401, 'INVALID_ADMIN_TOKEN'],
  ];
  for (const [name, authorization, status, code] of cases) {
    for (const path of ['/admin', '/admin/live']) {
      const res = await fetch(`${running.url}${path}`, authorization ? { headers: { authorization } } : {});
      const body = await res.text();
      expect([name, path, res.status]).toEqual([name, path, status]);
      expect([name, JSON.parse(body).errors[0].extensions.code]).toEqual([name, code]);
      expect(body).not.toContain('<svg');
    }
    // In the browser: a 401 asks for Basic credentials (headless Chromium has none to give, and ends the
    // navigation with ERR_INVALID_AUTH_CREDENTIALS); a 403 shows its error. Neither shows a chart.
    const { page } = await openPage(authorization);
    const answer = await page.goto(`${running.url}/admin`).catch((err: Error) => err.message);
    if (typeof answer === 'string') expect([name, answer]).toEqual([name, expect.stringContaining('ERR_INVALID_AUTH_CREDENTIALS')]);
    else expect([name, answer!.status()]).toEqual([name, status]);
    expect(await page.$$('svg')).toHaveLength(0);
    await page.close();
  }
  // Basic authentication with the admin token as the password is how a browser asks for it.
  const { page, errors } = await openPage(null);
  await page.authenticate({ username: 'operator', password: adminToken });
  const res = await page.goto(`${running.url}/admin`, { waitUntil: 'load' });
  expect(res!.status()).toBe(200);
  expect(await page.$$('svg.chart')).toHaveLength(4);
  expect(errors).toEqual([]);
  await page.close();
});

test('a bad window is refused with a code naming hours; an unset ADMIN_JWT_SECRET mounts nothing', async () => {
  const res = await fetch(`${running.url}/admin?hours=0`, { headers: { authorization: `Bearer ${adminToken}` } });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { errors: Array<{ message: string; extensions: { code: string } }> }).errors[0]).toMatchObject({
    extensions: { code: 'ADMIN_BAD_WINDOW' },
    message: expect.stringContaining('hours'),
  });
  expect(mountAdminPage(running.gateway, running.db, { ...running.config, adminJwtSecret: undefined })).toBeUndefined();
  expect(() => parseConfig({ ...database.env, ADMIN_JWT_SECRET: 'short' })).toThrow(/ADMIN_JWT_SECRET must be at least 32 characters/);
  expect(() => parseConfig({ ...database.env, JWT_SECRET: ADMIN_SECRET, ADMIN_JWT_SECRET: ADMIN_SECRET })).toThrow(
    /ADMIN_JWT_SECRET must differ from JWT_SECRET/,
  );
});

test('npm run token -- --admin issues a token the page accepts; without ADMIN_JWT_SECRET it says what is missing', async () => {
  const env = { ...process.env, ...database.env, LOG_LEVEL: 'silent' };
  const issued = spawnSync(process.execPath, [CLI, 'token', '--admin', '--sub', 'ops', '--expires', '10m'], {
    env: { ...env, ADMIN_JWT_SECRET: ADMIN_SECRET },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(issued.status).toBe(0);
  const res = await fetch(`${running.url}/admin?hours=1`, { headers: { authorization: `Bearer ${issued.stdout.trim()}` } });
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('<svg');
  const refused = spawnSync(process.execPath, [CLI, 'token', '--admin'], { env: { ...env, ADMIN_JWT_SECRET: '' }, encoding: 'utf8', timeout: 60_000 });
  expect(refused.status).not.toBe(0);
  expect(refused.stderr).toContain('--admin needs ADMIN_JWT_SECRET');
});

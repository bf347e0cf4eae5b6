// npm run bench:admin [-- --quick] [-- --current]: the operator page (/admin)
// in headless Chromium (/usr/bin/chromium, puppeteer-core) over a search log
// of several tenants: the page's size (HTML and its inline SVG), the
// server's time to answer it, and the browser's time to a rendered page
// (navigation start to load, charts drawn), each window (1 h to 30 days)
// loaded ROUNDS times. Prints a table and writes
// bench/results/admin-page-<backend>.json; a screenshot of the 7-day page
// goes to bench/results/admin-page.png. --current applies
// migrations/current.sql first (SQL not committed yet). Figures to read,
// never assertions.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import puppeteer from 'puppeteer-core';
import { loadConfig } from '../src/config/config.ts';
import { setLogLevel } from '../src/config/log.ts';
import { projectRoot } from '../src/config/paths.ts';
import { startGateway } from '../src/http/start.ts';
import { mountAdminPage } from '../src/admin/routes.ts';
import { signAdminToken } from '../src/admin/auth.ts';
import { WINDOWS } from '../src/admin/page.ts';
import { benchConfig, percentile, removeBenchTenants } from './support.ts';

const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) {
  process.stderr.write(`bench:admin needs ${CHROMIUM} (bash scripts/install-browser.sh)\n`);
  process.exit(1);
}
const quick = process.argv.includes('--quick');
const ROWS = quick ? 5_000 : 100_000;
const ROUNDS = quick ? 3 : 10;
const TENANTS = 5;
const PREFIX = `bench-${process.pid}-${Date.now().toString(36)}`;

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-bench-admin-'));
process.env.ADMIN_JWT_SECRET ??= randomBytes(32).toString('hex');
const config = { ...benchConfig(loadConfig), dataDir, logLevel: 'silent' as const };
setLogLevel('silent');
if (process.argv.includes('--current')) {
  const { migrateWithCurrent } = await import('../test/support/current-migration.ts');
  await migrateWithCurrent(config, 'bench current.sql');
}
const running = await startGateway(config, { port: 0, addRoutes: mountAdminPage });
const owner = new pg.Pool({ connectionString: running.db.ownerUrl, max: 2 });
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

// The log as searches leave it, spread over 30 days (denser in the last day): a fifth by text that found nothing.
process.stderr.write(`bench:admin: ${ROWS} search_logs rows of ${TENANTS} tenants\n`);
await owner.query(
  `insert into sheratan.search_logs (query_text, k, filters, result_count, top_similarity, latency_ms, user_id, tenant, created_at)
   select case when i % 5 = 0 then 'missing topic ' || (i % 37) end, 10,
          jsonb_build_object('sources', jsonb_build_array('source-' || (i % 12))),
          case when i % 5 = 0 then 0 else 1 + i % 10 end, 0.8, 1 + (i % 97) * 0.3 + (i % 1000) / 100.0, 'bench',
          $2 || '-' || ((i / 7) % $3), now() - make_interval(secs => (i::double precision / $1) ^ 2 * 30 * 86400)
     from generate_series(1, $1) i`,
  [ROWS, PREFIX, TENANTS],
);

const token = signAdminToken(running.config.adminJwtSecret!, { sub: 'bench' });
const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const results: Record<string, unknown> = {};
try {
  for (const hours of WINDOWS) {
    const server: number[] = [];
    const rendered: number[] = [];
    let htmlBytes = 0;
    let svgBytes = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 900 });
      await page.setExtraHTTPHeaders({ authorization: `Bearer ${token}` });
      const res = await page.goto(`${running.url}/admin?hours=${hours}`, { waitUntil: 'load' });
      if (res?.status() !== 200) throw new Error(`/admin?hours=${hours} answered ${res?.status()}: ${await res?.text()}`);
      // Navigation Timing: request sent to the last byte (the server's work and the transfer), and start to load.
      const t = await page.evaluate(() => {
        const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        const svgs = [...document.querySelectorAll('svg.chart')].map((s) => s.outerHTML.length);
        return {
          response: n.responseEnd - n.requestStart,
          load: n.loadEventEnd || performance.now(),
          charts: svgs.length,
          svg: svgs.reduce((a, b) => a + b, 0),
        };
      });
      if (t.charts !== 4) throw new Error(`the page drew ${t.charts} charts, not 4`);
      server.push(t.response);
      rendered.push(t.load);
      htmlBytes = Buffer.byteLength(await res.text());
      svgBytes = t.svg;
      if (hours === 168 && r === 0) await page.screenshot({ path: path.join(projectRoot, 'bench/results/admin-page.png'), fullPage: true });
      await page.close();
    }
    results[`${hours}h`] = {
      html_bytes: htmlBytes,
      svg_chars: svgBytes,
      response_p50_ms: round(percentile(server, 50)),
      response_max_ms: round(Math.max(...server)),
      load_p50_ms: round(percentile(rendered, 50)),
      load_max_ms: round(Math.max(...rendered)),
    };
  }
} finally {
  await browser.close();
  await removeBenchTenants(owner, (t) => t.startsWith(PREFIX));
  await owner.end();
  await running.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

const out = { backend: running.db.backend, rows: ROWS, tenants: TENANTS, rounds: ROUNDS, windows: results, quick, measured_at: new Date().toISOString() };
const file = path.join(projectRoot, `bench/results/admin-page-${running.db.backend}.json`);
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
process.stdout.write(
  [
    `operator page over ${ROWS} search_logs rows of ${TENANTS} tenants (${running.db.backend}), ${ROUNDS} loads per window`,
    'window    html kB   svg kB   server p50 ms   max   load p50 ms   max',
    ...Object.entries(results).map(([w, r]) => {
      const x = r as Record<string, number>;
      return `${w.padEnd(8)} ${(x.html_bytes! / 1024).toFixed(1).padStart(8)} ${(x.svg_chars! / 1024).toFixed(1).padStart(8)} ${String(x.response_p50_ms).padStart(15)} ${String(x.response_max_ms).padStart(5)} ${String(x.load_p50_ms).padStart(13)} ${String(x.load_max_ms).padStart(5)}`;
    }),
    `wrote ${path.relative(projectRoot, file)} and bench/results/admin-page.png`,
    '',
  ].join('\n'),
);

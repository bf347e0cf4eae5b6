// The operator page's HTML: doctor's checks, the ANN index, the live panel
// (jobs and embedding progress, updated from /admin/live) and the search
// analytics as inline SVG charts (svg-chart.ts). Everything is drawn here,
// on the server; the page's one script only copies the live figures into
// their cells. Every string from the database is escaped.
import type { Analytics, Check, LiveFigures } from './data.ts';
import { barChart, escapeXml as esc, lineChart, shortNumber } from './svg-chart.ts';

export const ADMIN_PATH = '/admin';
export const ADMIN_LIVE_PATH = '/admin/live';
/** The windows the page offers, in hours. */
export const WINDOWS = [1, 24, 168, 720] as const;

export interface PageInput {
  backend: 'embedded' | 'server';
  hours: number;
  analytics: Analytics;
  live: LiveFigures;
  checks: Check[];
  /** The CSP nonce of the page's style and script. */
  nonce: string;
}

const JOB_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;

const bytes = (n: number): string => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} kB` : `${n} B`);

/** A time tick: hours and minutes for a day or less, the date otherwise (UTC). */
function timeFormat(hours: number): (ms: number) => string {
  return (ms) => {
    const iso = new Date(ms).toISOString();
    return hours <= 24 ? iso.slice(11, 16) : iso.slice(5, 10);
  };
}

/** The four charts of the search analytics. */
export function analyticsCharts(a: Analytics, hours: number): Record<'latency' | 'searches' | 'resultCounts' | 'sources', string> {
  const at = (r: { bucket: Date }): number => r.bucket.getTime();
  const xFormat = timeFormat(hours);
  const ms = (y: number): string => `${shortNumber(y)} ms`;
  return {
    latency: lineChart({
      title: 'Search latency percentiles',
      xLabel: `time (UTC), ${a.bucketSeconds / 60}-minute buckets`,
      yLabel: 'latency (ms)',
      xFormat,
      yFormat: ms,
      series: [
        { name: 'p50', points: a.series.map((r) => ({ x: at(r), y: r.p50LatencyMs })) },
        { name: 'p95', points: a.series.map((r) => ({ x: at(r), y: r.p95LatencyMs })) },
        { name: 'p99', points: a.series.map((r) => ({ x: at(r), y: r.p99LatencyMs })) },
      ],
    }),
    searches: lineChart({
      title: 'Searches and zero-result searches',
      xLabel: `time (UTC), ${a.bucketSeconds / 60}-minute buckets`,
      yLabel: 'searches per bucket',
      xFormat,
      series: [
        { name: 'searches', points: a.series.map((r) => ({ x: at(r), y: r.searches })) },
        { name: 'zero results', points: a.series.map((r) => ({ x: at(r), y: r.zeroResultSearches })) },
      ],
    }),
    resultCounts: barChart({
      title: 'Results per search',
      xLabel: 'results returned',
      yLabel: 'searches',
      categories: a.resultCounts.map((r) => String(r.resultCount)),
      series: [{ name: 'searches', values: a.resultCounts.map((r) => r.searches) }],
    }),
    sources: barChart({
      title: 'Top sources searched',
      xLabel: 'source filter',
      yLabel: 'searches',
      categories: a.topSources.map((r) => r.source),
      series: [
        { name: 'searches', values: a.topSources.map((r) => r.searches) },
        { name: 'zero results', values: a.topSources.map((r) => r.zeroResultSearches) },
      ],
    }),
  };
}

function liveRows(live: LiveFigures): string {
  const e = live.embedding;
  const share = e.chunks ? e.embeddedChunks / e.chunks : 1;
  const cell = (id: string, value: number): string => `<td id="${id}">${value}</td>`;
  return (
    `<table class="live"><tr><th colspan="2">jobs</th></tr>` +
    JOB_STATUSES.map((s) => `<tr><td>${s}</td>${cell(`jobs-${s}`, live.jobs[s] ?? 0)}</tr>`).join('') +
    `</table><table class="live"><tr><th colspan="2">embedding</th></tr>` +
    `<tr><td>documents pending</td>${cell('embedding-pendingDocuments', e.pendingDocuments)}</tr>` +
    `<tr><td>documents embedded</td>${cell('embedding-embeddedDocuments', e.embeddedDocuments)}</tr>` +
    `<tr><td>documents failed</td>${cell('embedding-failedDocuments', e.failedDocuments)}</tr>` +
    `<tr><td>chunks embedded</td><td><span id="embedding-embeddedChunks">${e.embeddedChunks}</span> of <span id="embedding-chunks">${e.chunks}</span>` +
    ` <progress id="embedding-progress" max="1" value="${share.toFixed(4)}"></progress></td></tr></table>`
  );
}

function annIndexTable(live: LiveFigures): string {
  const ix = live.annIndex;
  if (!ix) return '<p id="ann-index">no ANN index (npm run index:tune -- --hnsw)</p>';
  return (
    `<table id="ann-index"><tr><td>name</td><td>${esc(ix.name)}</td></tr><tr><td>method</td><td>${esc(ix.method)}</td></tr>` +
    `<tr><td>options</td><td>${esc(ix.options.join(', ') || 'defaults')}</td></tr>` +
    `<tr><td>size</td><td id="ann-size" data-bytes="${ix.sizeBytes}">${bytes(ix.sizeBytes)}</td></tr>` +
    `<tr><td>entries (chunks embedded)</td><td id="ann-entries">${live.embedding.embeddedChunks}</td></tr>` +
    `<tr><td>index scans</td><td id="ann-scans">${ix.scans}</td></tr></table>`
  );
}

function doctorTable(checks: Check[]): string {
  return (
    `<table id="doctor"><tr><th>status</th><th>check</th><th>detail</th></tr>` +
    checks
      .map(
        (c) =>
          `<tr class="check ${c.status}" data-status="${c.status}"><td>${c.status}</td><td>${esc(c.name)}</td><td>${esc(c.detail)}${c.fix ? `<br><small>fix: ${esc(c.fix)}</small>` : ''}</td></tr>`,
      )
      .join('') +
    `</table>`
  );
}

function zeroResultTable(a: Analytics): string {
  if (a.zeroResultQueries.length === 0) return '<p id="zero-result-queries">no search by text found nothing in this window</p>';
  return (
    `<table id="zero-result-queries"><tr><th>tenant</th><th>query</th><th>times</th><th>last (UTC)</th></tr>` +
    a.zeroResultQueries
      .map(
        (q) =>
          `<tr><td>${esc(q.tenant ?? '')}</td><td>${esc(q.queryText)}</td><td>${q.searches}</td><td>${esc(q.lastAt.toISOString().slice(0, 16).replace('T', ' '))}</td></tr>`,
      )
      .join('') +
    `</table>`
  );
}

// Copies each figure of an /admin/live event into the cell whose id names it.
const LIVE_SCRIPT = `
const source = new EventSource(${JSON.stringify(ADMIN_LIVE_PATH)});
const set = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = String(value); };
source.addEventListener('figures', (event) => {
  const f = JSON.parse(event.data);
  for (const s of ${JSON.stringify(JOB_STATUSES)}) set('jobs-' + s, f.jobs[s] ?? 0);
  for (const [k, v] of Object.entries(f.embedding)) set('embedding-' + k, v);
  const bar = document.getElementById('embedding-progress');
  if (bar) bar.value = f.embedding.chunks ? f.embedding.embeddedChunks / f.embedding.chunks : 1;
  set('ann-entries', f.embedding.embeddedChunks);
  if (f.annIndex) set('ann-scans', f.annIndex.scans);
  set('live-at', f.at.slice(11, 19) + ' UTC');
  document.getElementById('live').dataset.updates = String(Number(document.getElementById('live').dataset.updates) + 1);
});
source.addEventListener('error', () => set('live-at', 'reconnecting…'));
`;

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 24px; color: #111827; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 16px 8px 0; vertical-align: top; }
td, th { border: 1px solid #e5e7eb; padding: 3px 8px; text-align: left; }
tr.fail td:first-child { color: #b91c1c; font-weight: 600; } tr.warn td:first-child { color: #b45309; } tr.ok td:first-child { color: #047857; }
.live { display: inline-table; } .charts { display: flex; flex-wrap: wrap; gap: 12px; } figure { margin: 0; }
nav a { margin-right: 10px; } small { color: #4b5563; }
`;

export function renderPage(input: PageInput): string {
  const { analytics: a, live, hours, nonce } = input;
  const charts = analyticsCharts(a, hours);
  const total = a.series.reduce((n, r) => n + r.searches, 0);
  const zero = a.series.reduce((n, r) => n + r.zeroResultSearches, 0);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sheratan Store · operator</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<style nonce="${nonce}">${STYLE}</style></head>
<body>
<h1>Sheratan Store · operator page</h1>
<p>${input.backend} backend · drawn ${esc(new Date().toISOString().slice(0, 19).replace('T', ' '))} UTC</p>
<h2>Doctor</h2>
${doctorTable(input.checks)}
<h2>ANN index</h2>
${annIndexTable(live)}
<h2>Jobs and embedding, live</h2>
<div id="live" data-updates="0">${liveRows(live)}<p>updated <span id="live-at">${esc(live.at.slice(11, 19))} UTC</span></p></div>
<h2>Searches, last ${hours < 48 ? `${hours} h` : `${hours / 24} days`}</h2>
<nav>${WINDOWS.map((w) => `<a href="${ADMIN_PATH}?hours=${w}">${w < 48 ? `${w} h` : `${w / 24} days`}</a>`).join('')}</nav>
<p id="search-totals">${total} searches, ${zero} with no result, all tenants</p>
<div class="charts">
<figure id="chart-latency">${charts.latency}</figure>
<figure id="chart-searches">${charts.searches}</figure>
<figure id="chart-result-counts">${charts.resultCounts}</figure>
<figure id="chart-sources">${charts.sources}</figure>
</div>
<h2>Zero-result queries</h2>
${zeroResultTable(a)}
<script nonce="${nonce}">${LIVE_SCRIPT}</script>
</body></html>
`;
}

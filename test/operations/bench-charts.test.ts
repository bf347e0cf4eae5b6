// `npm run bench`'s SVG charts (bench/charts.ts over src/admin/svg-chart.ts),
// drawn from a small result fixture: each is well-formed XML (every tag
// closed in order, attributes quoted, no bare & or <), has its title, one x
// and one y axis with ticks, one <path class="line"> per series on line
// charts with a point per figure, one bar per category and series on bar
// charts; names that need escaping stay escaped.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchCharts, CHART_FILES, writeBenchCharts, type BenchFigures } from '../../bench/charts.ts';
import { barChart, lineChart, niceTicks } from '../../src/admin/svg-chart.ts';

const fixture = JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures/bench-result.json'), 'utf8')) as BenchFigures;

/** Checks the text is well-formed XML as far as these charts go; returns the problems. */
function xmlProblems(svg: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < svg.length) {
    const lt = svg.indexOf('<', i);
    const text = svg.slice(i, lt < 0 ? svg.length : lt);
    if (/&(?!(amp|lt|gt|quot|#39);)/.test(text)) problems.push(`a bare & in "${text.slice(0, 40)}"`);
    if (text.includes('>')) problems.push(`a bare > in "${text.slice(0, 40)}"`);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(svg);
    if (!m) {
      problems.push(`not a tag at ${lt}: ${svg.slice(lt, lt + 40)}`);
      break;
    }
    const [, closing, name, attrs, selfClosing] = m;
    if (/&(?!(amp|lt|gt|quot|#39);)/.test(attrs!)) problems.push(`a bare & in the attributes of <${name}>`);
    if (closing) {
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open}>`);
    } else if (!selfClosing) stack.push(name!);
    i = tag.lastIndex;
  }
  if (stack.length) problems.push(`never closed: ${stack.join(', ')}`);
  return problems;
}

const count = (svg: string, re: RegExp): number => svg.match(new RegExp(re, 'g'))?.length ?? 0;

/** The series of a chart, each with its lines, points and bars. */
function seriesOf(svg: string): Array<{ name: string; lines: number; points: number; bars: number }> {
  return [...svg.matchAll(/<g class="series" data-series="([^"]*)">(.*?)<\/g>(?=<g class="series"|<g class="legend"|<text class="no-data"|<\/svg>)/g)].map(
    ([, name, body]) => ({
      name: name!,
      lines: count(body!, /<path class="line"/),
      points: count(body!, /<circle class="point"/),
      bars: count(body!, /<rect class="bar"/),
    }),
  );
}

test('the bench writes five charts, each well-formed SVG with a title and both axes', () => {
  const charts = benchCharts(fixture);
  expect(Object.keys(charts)).toEqual([...CHART_FILES]);
  for (const [file, svg] of Object.entries(charts)) {
    expect([file, xmlProblems(svg)]).toEqual([file, []]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(count(svg, /<title>/)).toBeGreaterThanOrEqual(1);
    expect(count(svg, /<g class="axis x-axis">/)).toBe(1);
    expect(count(svg, /<g class="axis y-axis">/)).toBe(1);
    expect(count(svg, /<g class="axis y-axis">.*?<g class="tick">/)).toBe(1);
  }
});

test('line charts: one path per series and a point per figure; recall and p50 against ef_search, p50 against table size', () => {
  const charts = benchCharts(fixture);
  const efs = Object.keys(fixture.search.recall_by_ef_search).length;
  expect(seriesOf(charts['bench-ef-search-recall.svg'])).toEqual([{ name: 'recall@10', lines: 1, points: efs, bars: 0 }]);
  expect(seriesOf(charts['bench-ef-search-p50.svg'])).toEqual([{ name: 'p50', lines: 1, points: efs, bars: 0 }]);
  const sizes = fixture.scaling.length;
  expect(seriesOf(charts['bench-table-size-p50.svg'])).toEqual(['hnsw', 'exact', 'filtered'].map((name) => ({ name, lines: 1, points: sizes, bars: 0 })));
  // ef_search and table sizes are on a log scale, ticked at the sizes measured.
  const xAxis = /<g class="axis x-axis">.*?<text class="axis-label"/.exec(charts['bench-table-size-p50.svg'])![0];
  const ticks = [...xAxis.matchAll(/<g class="tick"><line[^>]*\/><text[^>]*>([^<]+)<\/text><\/g>/g)].map((m) => m[1]);
  expect(ticks).toEqual(['1000', '2000', '4000']);
  // A line's x grows with ef_search.
  const d = /<path class="line" d="([^"]+)"/.exec(charts['bench-ef-search-p50.svg'])![1]!;
  const xs = [...d.matchAll(/[ML]([\d.]+),/g)].map((m) => Number(m[1]));
  expect(xs).toEqual([...xs].sort((a, b) => a - b));
  expect(new Set(xs).size).toBe(efs);
});

test('bar charts: ours against the raw SQL and each peer, a bar per gateway and figure', () => {
  const charts = benchCharts(fixture);
  const gateways = 2 + Object.keys(fixture.search.peers).length;
  expect(seriesOf(charts['bench-peers-latency.svg'])).toEqual([
    { name: 'p50', lines: 0, points: 0, bars: gateways },
    { name: 'p95', lines: 0, points: 0, bars: gateways },
  ]);
  expect(seriesOf(charts['bench-peers-qps.svg'])).toEqual([{ name: 'qps', lines: 0, points: 0, bars: gateways }]);
  for (const name of ['sheratan (graphql)', 'raw sql', 'postgraphile_plain', 'yoga_pg', 'http_pg'])
    expect(charts['bench-peers-latency.svg']).toContain(`<title>${name}</title>`);
});

test('writeBenchCharts writes the files; names are escaped; an empty chart says so and stays well-formed', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-charts-'));
  try {
    const written = writeBenchCharts(fixture, dir);
    expect(written.map((f) => path.basename(f))).toEqual([...CHART_FILES]);
    for (const f of written) expect(readFileSync(f, 'utf8')).toMatch(/^<svg[^]*<\/svg>\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const hostile = barChart({ title: 'a <b> & "c"', xLabel: 'x', yLabel: 'y', categories: ['<script>', 'a&b'], series: [{ name: '"quoted"', values: [1, 2] }] });
  expect(xmlProblems(hostile)).toEqual([]);
  expect(hostile).not.toContain('<script>');
  const empty = lineChart({ title: 'nothing', xLabel: 'x', yLabel: 'y', series: [{ name: 'none', points: [] }] });
  expect(xmlProblems(empty)).toEqual([]);
  expect(empty).toContain('no data yet');
  expect(niceTicks(0, 9.3)).toEqual([0, 2, 4, 6, 8, 10]);
});

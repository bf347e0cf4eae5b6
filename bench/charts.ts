// The pictures of `npm run bench`: SVG charts drawn from the result it writes
// to bench/results/latest.json, written beside it (bench/README.md links
// them). The drawing is the operator page's (src/admin/svg-chart.ts); this
// file only says which figures go on which chart. Pure: the result in,
// file names and SVG text out (writeBenchCharts writes them).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { barChart, lineChart } from '../src/admin/svg-chart.ts';

/** What the charts read of bench/run.ts's result. */
export interface BenchFigures {
  backend: string;
  dataset: { n: number; dim: number };
  search: {
    graphql: { p50_ms: number; p95_ms: number; qps: number };
    raw_sql: { p50_ms: number; p95_ms: number; qps: number };
    peers: Record<string, { p50_ms: number; p95_ms: number; qps: number }>;
    recall_by_ef_search: Record<string, { recall_at_10: number; p50_ms: number }>;
  };
  scaling: Array<{ n: number; hnsw_p50_ms: number; exact_p50_ms: number; filtered_p50_ms: number }>;
}

/** The chart files, by name (in bench/results/). */
export const CHART_FILES = [
  'bench-ef-search-recall.svg',
  'bench-ef-search-p50.svg',
  'bench-table-size-p50.svg',
  'bench-peers-latency.svg',
  'bench-peers-qps.svg',
] as const;
export type ChartFile = (typeof CHART_FILES)[number];

export function benchCharts(r: BenchFigures): Record<ChartFile, string> {
  const where = `${r.backend}, ${r.dataset.n.toLocaleString('en')} chunks × ${r.dataset.dim} dims`;
  const ef = Object.entries(r.search.recall_by_ef_search)
    .map(([e, f]) => ({ ef: Number(e), ...f }))
    .sort((a, b) => a.ef - b.ef);
  const ms = (y: number): string => `${+y.toPrecision(3)} ms`;
  // Ours first, then the hand-written SQL, then each peer: the comparison the targets make.
  const contenders: Array<[string, { p50_ms: number; p95_ms: number; qps: number }]> = [
    ['sheratan (graphql)', r.search.graphql],
    ['raw sql', r.search.raw_sql],
    ...Object.entries(r.search.peers),
  ];
  return {
    'bench-ef-search-recall.svg': lineChart({
      title: `recall@10 by hnsw.ef_search (${where})`,
      xLabel: 'hnsw.ef_search',
      yLabel: 'recall@10 vs exact search',
      xScale: 'log',
      yFromZero: false,
      series: [{ name: 'recall@10', points: ef.map((e) => ({ x: e.ef, y: e.recall_at_10 })) }],
    }),
    'bench-ef-search-p50.svg': lineChart({
      title: `p50 latency by hnsw.ef_search (raw SQL, ${where})`,
      xLabel: 'hnsw.ef_search',
      yLabel: 'p50 latency (ms)',
      xScale: 'log',
      yFormat: ms,
      series: [{ name: 'p50', points: ef.map((e) => ({ x: e.ef, y: e.p50_ms })) }],
    }),
    'bench-table-size-p50.svg': lineChart({
      title: `p50 latency by table size (${r.backend})`,
      xLabel: 'chunks in the table',
      yLabel: 'p50 latency (ms)',
      xScale: 'log',
      yFormat: ms,
      series: [
        { name: 'hnsw', points: r.scaling.map((s) => ({ x: s.n, y: s.hnsw_p50_ms })) },
        { name: 'exact', points: r.scaling.map((s) => ({ x: s.n, y: s.exact_p50_ms })) },
        { name: 'filtered', points: r.scaling.map((s) => ({ x: s.n, y: s.filtered_p50_ms })) },
      ],
    }),
    'bench-peers-latency.svg': barChart({
      title: `search latency, ours against the peers (${where})`,
      xLabel: 'gateway',
      yLabel: 'latency (ms)',
      yFormat: ms,
      width: 760,
      categories: contenders.map(([name]) => name),
      series: [
        { name: 'p50', values: contenders.map(([, f]) => f.p50_ms) },
        { name: 'p95', values: contenders.map(([, f]) => f.p95_ms) },
      ],
    }),
    'bench-peers-qps.svg': barChart({
      title: `searches per second at concurrency 8 (${where})`,
      xLabel: 'gateway',
      yLabel: 'queries per second',
      width: 760,
      categories: contenders.map(([name]) => name),
      series: [{ name: 'qps', values: contenders.map(([, f]) => f.qps) }],
    }),
  };
}

/** Writes the charts into `dir`; returns the paths written. */
export function writeBenchCharts(r: BenchFigures, dir: string): string[] {
  return Object.entries(benchCharts(r)).map(([file, svg]) => {
    const target = path.join(dir, file);
    writeFileSync(target, `${svg}\n`);
    return target;
  });
}

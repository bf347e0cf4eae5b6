// CI's check of the quick benchmark's output (bench/results/latest.json):
// that this run wrote it (measured in the last hour, on the backend named),
// and that every figure is a finite number in its range — a smoke run that
// printed tables but measured nothing, or NaN, fails here.
// Usage: node scripts/check-bench-result.ts embedded|server
import { readFileSync } from 'node:fs';
import path from 'node:path';

const backend = process.argv[2];
if (backend !== 'embedded' && backend !== 'server') {
  process.stderr.write('usage: node scripts/check-bench-result.ts embedded|server\n');
  process.exit(2);
}
const file = path.join(import.meta.dirname, '..', 'bench', 'results', 'latest.json');
const r = JSON.parse(readFileSync(file, 'utf8'));
const problems: string[] = [];
const positive = (what: string, x: unknown) => {
  if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) problems.push(`${what} is ${JSON.stringify(x)}, not a positive number`);
};
const share = (what: string, x: unknown) => {
  if (typeof x !== 'number' || !(x >= 0 && x <= 1)) problems.push(`${what} is ${JSON.stringify(x)}, not between 0 and 1`);
};

if (r.backend !== backend) problems.push(`backend is ${JSON.stringify(r.backend)}, not ${backend}`);
const age = Date.now() - Date.parse(r.measured_at);
if (!(age >= 0 && age < 3_600_000)) problems.push(`measured_at ${r.measured_at} is not from this run`);
for (const [name, s] of Object.entries({ graphql: r.search?.graphql, raw_sql: r.search?.raw_sql })) {
  for (const key of ['p50_ms', 'p95_ms', 'qps', 'qps_c1']) positive(`search.${name}.${key}`, s?.[key]);
}
share('search.recall_at_10', r.search?.recall_at_10);
const peers = Object.entries((r.search?.peers ?? {}) as Record<string, Record<string, unknown>>);
if (!peers.length) problems.push('no peer was measured');
for (const [name, p] of peers) for (const key of ['p50_ms', 'qps']) positive(`search.peers.${name}.${key}`, p[key]);
const modes = Object.entries((r.modes ?? {}) as Record<string, Record<string, unknown>>);
if (!modes.length) problems.push('no retrieval mode was measured');
for (const [name, m] of modes) positive(`modes["${name}"].p50_ms`, m.p50_ms);
positive('ingest.graphql_chunks_per_s', r.ingest?.graphql_chunks_per_s);
for (const x of (r.scaling ?? []) as Array<Record<string, unknown>>) positive(`scaling[n=${x.n}].hnsw_p50_ms`, x.hnsw_p50_ms);

console.log(
  `bench result (${backend}): ${problems.length ? `${problems.length} problem(s)` : 'every figure present and finite'}; ${peers.length} peers, ${modes.length} modes`,
);
for (const p of problems) console.log(`  ✗ ${p}`);
process.exit(problems.length ? 1 : 0);

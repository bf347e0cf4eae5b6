// CI's judge of one run of the suite (jest's --json report): the run counts
// only if every skipped test is one the manifest (test/expected-skips.json)
// names for this backend, with its reason; every test the manifest names for
// this backend was in fact skipped (an entry that no longer skips is stale);
// and at least the manifest's minimum of tests passed, so that a run which
// quietly lost files, or ran on the other backend, cannot pass.
// Usage: node scripts/check-test-report.ts REPORT.json embedded|server [--write]
// Prints what it found; exits 1 on any mismatch. With --write it instead sets
// this backend's skips in the manifest to the report's (a reason kept where
// the manifest had one, else taken from the "[… only: reason]" in the name),
// for a maintainer to review and commit.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

interface Report {
  numPassedTests: number;
  testResults: Array<{ name: string; assertionResults: Array<{ fullName: string; status: string }> }>;
}
interface Expected {
  /** The fewest tests that may pass on this backend. */
  minPassed: number;
  /** Each test skipped on this backend (jest's full name) → why. */
  skips: Record<string, string>;
}

const [reportFile, backend, flag] = process.argv.slice(2);
if (!reportFile || (backend !== 'embedded' && backend !== 'server')) {
  process.stderr.write('usage: node scripts/check-test-report.ts REPORT.json embedded|server\n');
  process.exit(2);
}
const manifestFile = path.join(import.meta.dirname, '..', 'test', 'expected-skips.json');
const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Record<'embedded' | 'server', Expected>;
const expected = manifest[backend];
const report = JSON.parse(readFileSync(reportFile, 'utf8')) as Report;

const skipped = report.testResults.flatMap((f) =>
  f.assertionResults
    .filter((a) => a.status === 'pending' || a.status === 'todo')
    .map((a) => ({ name: a.fullName, file: path.relative(process.cwd(), f.name) })),
);
if (flag === '--write') {
  const skips = Object.fromEntries(
    skipped.map((s) => [s.name, expected.skips[s.name] ?? /\[(?:embedded|server) only: ([^\]]+)\]/.exec(s.name)?.[1] ?? 'REASON NEEDED']),
  );
  manifest[backend] = { ...expected, skips };
  writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${Object.keys(skips).length} ${backend} skips to test/expected-skips.json`);
  process.exit(0);
}

const problems: string[] = [];
for (const s of skipped) {
  if (!(s.name in expected.skips)) problems.push(`skipped but not in test/expected-skips.json (${backend}): "${s.name}" (${s.file})`);
}
const skippedNames = new Set(skipped.map((s) => s.name));
for (const name of Object.keys(expected.skips)) {
  if (!skippedNames.has(name)) problems.push(`in test/expected-skips.json (${backend}) but not skipped (ran, or no longer exists): "${name}"`);
}
if (report.numPassedTests < expected.minPassed) {
  problems.push(`${report.numPassedTests} tests passed on ${backend}, fewer than the minimum of ${expected.minPassed} (test/expected-skips.json)`);
}

console.log(
  `${backend}: ${skipped.length} skipped, each ${problems.length ? 'checked' : 'expected'}; ${report.numPassedTests} passed (minimum ${expected.minPassed})`,
);
for (const s of skipped) console.log(`  skipped: ${s.name} — ${expected.skips[s.name] ?? 'NOT EXPECTED'}`);
for (const p of problems) console.log(`  ✗ ${p}`);
process.exit(problems.length ? 1 : 0);

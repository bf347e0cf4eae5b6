// npm run bench:engine-soak [-- --configs baseline,no-wasm-code-gc --minutes 5]:
// how often the process running the embedded engine dies of V8's abort in its
// WebAssembly code bookkeeping (nodejs/node#64500; "Check failed: jit_page…",
// SIGTRAP/SIGSEGV/SIGABRT) under engine churn, per Node binary and V8 flags
// (issue 31, item 5). For each configuration, `--processes` child processes
// (bench/engine-soak-child.ts, as jest's workers) run at once, each starting
// and stopping `--engines` engines in parallel `--cycles` times; a child that
// ends is replaced until `--minutes` have passed (children under way then
// finish). A crash is a child ended by a signal, or whose stderr has V8's
// fatal-error banner; it is counted with the cycles finished before it.
// Prints progress and a table; writes bench/results/engine-soak.json (the
// configurations of earlier runs that this run did not repeat are kept).
// Figures to read, never assertions: a rare crash needs many cycles to show.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { projectRoot } from '../src/config/paths.ts';

interface SoakConfig {
  /** Node's own command-line flags for the child (V8 flags among them; NODE_OPTIONS refuses V8's WebAssembly flags). */
  nodeArgs: string[];
  /** Set by the child with v8.setFlagsFromString before its first engine. */
  runtimeFlags?: string;
  /** Another Node binary (default: the pinned one, node_modules/.bin/node). */
  node?: string;
  /** How each engine ends: `clean` (the product's stop) or `terminate` (Worker.terminate right after the work). */
  stop?: 'clean' | 'terminate';
  why: string;
}

const CONFIGS: Record<string, SoakConfig> = {
  baseline: { nodeArgs: [], why: 'the pinned Node as shipped' },
  'no-wasm-code-gc': {
    nodeArgs: ['--no-wasm-code-gc'],
    why: 'no freeing of WebAssembly code that is no longer used (the JIT-page registry is updated on free)',
  },
  'no-wasm-tier-up': { nodeArgs: ['--no-wasm-tier-up'], why: 'Liftoff code only, no background TurboFan recompilation replacing it' },
  'liftoff-only': { nodeArgs: ['--liftoff-only'], why: 'no TurboFan for WebAssembly at all' },
  'no-liftoff': { nodeArgs: ['--no-liftoff'], why: 'TurboFan only: code compiled once, never replaced' },
  'no-wasm-lazy-compilation': { nodeArgs: ['--no-wasm-lazy-compilation'], why: 'all functions compiled up front rather than on first call from any thread' },
  'no-memory-protection-keys': { nodeArgs: ['--no-memory-protection-keys'], why: 'no PKU write-protection of code pages (matters only where the CPU has PKU)' },
  terminate: { nodeArgs: [], stop: 'terminate', why: 'the pinned Node, each engine terminated right after its work' },
  'terminate-no-wasm-code-gc': { nodeArgs: ['--no-wasm-code-gc'], stop: 'terminate', why: 'terminated engines, no WebAssembly code GC' },
  'terminate-no-wasm-tier-up': { nodeArgs: ['--no-wasm-tier-up'], stop: 'terminate', why: 'terminated engines, no tier-up' },
  'runtime-no-wasm-code-gc': {
    nodeArgs: [],
    runtimeFlags: '--no-wasm-code-gc',
    why: 'as no-wasm-code-gc, set by the program at start-up (v8.setFlagsFromString)',
  },
};

const { values } = parseArgs({
  options: {
    configs: { type: 'string', default: 'baseline' },
    minutes: { type: 'string', default: '3.5' },
    processes: { type: 'string', default: '2' },
    engines: { type: 'string', default: '2' },
    cycles: { type: 'string', default: '2' },
    node: { type: 'string' },
    label: { type: 'string' },
  },
});
// Bounded: the machine is shared. Children under way at the deadline finish (a minute at most), so a configuration takes ≤ 5 min.
const minutes = Math.min(3.5, Number(values.minutes));
const processes = Number(values.processes);
const pinnedNode = path.join(projectRoot, 'node_modules', '.bin', 'node');
const childScript = path.join(import.meta.dirname, 'engine-soak-child.ts');
const V8_ABORT = /Fatal error in|Check failed:|Fatal process out of memory/;

interface ConfigResult {
  config: string;
  why: string;
  node: string;
  node_version: string;
  node_args: string[];
  runtime_flags: string;
  stop: string;
  minutes: number;
  processes: number;
  engines_per_process: number;
  children: number;
  cycles: number;
  crashes: number;
  other_failures: number;
  crash_rate_per_1000_cycles: number;
  crash_signatures: string[];
  failure_samples: string[];
  cycle_ms_p50: number;
  finished_at: string;
}

function nodeVersion(node: string): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(node, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', () => resolve(out.trim()));
    child.on('error', () => resolve('unavailable'));
  });
}

/** One child process to its end: cycles it finished, and how it ended. */
function runChild(node: string, config: SoakConfig): Promise<{ cycles: number[]; signal: NodeJS.Signals | null; code: number | null; stderr: string }> {
  const args = [...config.nodeArgs, childScript, '--engines', values.engines!, '--cycles', values.cycles!, '--stop', config.stop ?? 'clean'];
  if (config.runtimeFlags) args.push('--runtime-flags', config.runtimeFlags);
  const child = spawn(node, args, { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'silent' } });
  const cycles: number[] = [];
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    let nl: number;
    while ((nl = stdout.indexOf('\n')) >= 0) {
      const m = /^cycle \d+ \d+ (\d+)$/.exec(stdout.slice(0, nl));
      if (m) cycles.push(Number(m[1]));
      stdout = stdout.slice(nl + 1);
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ cycles, signal, code, stderr })));
}

async function soak(name: string): Promise<ConfigResult> {
  const config = CONFIGS[name];
  if (!config) throw new Error(`unknown configuration ${name}; known: ${Object.keys(CONFIGS).join(', ')}`);
  const node = values.node ?? config.node ?? pinnedNode;
  const version = await nodeVersion(node);
  const label = values.label ? `${name}@${values.label}` : name;
  const deadline = Date.now() + minutes * 60_000;
  const durations: number[] = [];
  const signatures: string[] = [];
  const failures: string[] = [];
  let children = 0;
  let crashes = 0;
  let otherFailures = 0;
  console.log(
    `== ${label}: node ${version} ${[...config.nodeArgs, config.runtimeFlags ? `(runtime ${config.runtimeFlags})` : ''].join(' ').trim()} — ${config.why}`,
  );
  const lane = async (): Promise<void> => {
    while (Date.now() < deadline) {
      children++;
      const r = await runChild(node, config);
      durations.push(...r.cycles);
      const banner = V8_ABORT.exec(r.stderr);
      if (r.signal || banner || r.code === 133 || r.code === 134 || r.code === 139) {
        crashes++;
        const check = /Check failed:[^\n]*/.exec(r.stderr)?.[0] ?? banner?.[0] ?? '';
        signatures.push(`${r.signal ?? `exit ${r.code}`} ${check}`.trim());
        console.log(`  CRASH after ${r.cycles.length} cycles: ${signatures.at(-1)}`);
      } else if (r.code !== 0) {
        otherFailures++;
        failures.push(r.stderr.trim().split('\n').slice(-5).join('\n').slice(0, 1500));
        console.log(`  child failed (exit ${r.code}) after ${r.cycles.length} cycles: ${failures.at(-1)!.split('\n').at(-1)}`);
      }
      console.log(
        `  ${label}: ${durations.length} cycles, ${crashes} crashes, ${otherFailures} other failures, ${Math.max(0, Math.round((deadline - Date.now()) / 1000))} s left`,
      );
    }
  };
  await Promise.all(Array.from({ length: processes }, lane));
  const sorted = [...durations].sort((a, b) => a - b);
  return {
    config: label,
    why: config.why,
    node,
    node_version: version,
    node_args: config.nodeArgs,
    runtime_flags: config.runtimeFlags ?? '',
    stop: config.stop ?? 'clean',
    minutes,
    processes,
    engines_per_process: Number(values.engines),
    children,
    cycles: durations.length,
    crashes,
    other_failures: otherFailures,
    crash_rate_per_1000_cycles: durations.length ? Math.round((crashes / durations.length) * 1000 * 100) / 100 : 0,
    crash_signatures: signatures,
    failure_samples: failures.slice(0, 3),
    cycle_ms_p50: sorted.length ? sorted[Math.floor(sorted.length / 2)]! : 0,
    finished_at: new Date().toISOString(),
  };
}

const results: ConfigResult[] = [];
for (const name of values
  .configs!.split(',')
  .map((s) => s.trim())
  .filter(Boolean))
  results.push(await soak(name));

console.log('\nconfig                          node       cycles  crashes  other  per 1000 cycles  p50 cycle');
for (const r of results) {
  console.log(
    `${r.config.padEnd(32)}${r.node_version.padEnd(11)}${String(r.cycles).padStart(6)}${String(r.crashes).padStart(9)}${String(r.other_failures).padStart(7)}${String(r.crash_rate_per_1000_cycles).padStart(17)}${`${(r.cycle_ms_p50 / 1000).toFixed(1)} s`.padStart(11)}`,
  );
}

const outDir = path.join(import.meta.dirname, 'results');
mkdirSync(outDir, { recursive: true });
const outFile = path.join(outDir, 'engine-soak.json');
const earlier: ConfigResult[] = existsSync(outFile) ? (JSON.parse(readFileSync(outFile, 'utf8')) as { configs: ConfigResult[] }).configs : [];
const merged = [...earlier.filter((e) => !results.some((r) => r.config === e.config)), ...results];
writeFileSync(
  outFile,
  `${JSON.stringify({ note: 'engine churn soak (bench/engine-soak.ts); cycles = engine start → COPY, HNSW index, searches → stop', configs: merged }, null, 2)}\n`,
);
console.log(`wrote ${path.relative(projectRoot, outFile)}`);

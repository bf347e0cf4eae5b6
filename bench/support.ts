// Shared by the benchmark programs: documents inserted the hand-written way
// (the path the gateway is compared with), percentiles, and a GraphQL client.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { toPgVector } from '../test/support/embeddings.ts';
import { postOnce, postText } from '../test/support/processes.ts';

export interface RawChunk {
  content: string;
  embedding: number[];
}

/** One document and its chunks by plain INSERTs (one multi-row for the chunks); returns its id. */
export async function insertDocument(client: pg.ClientBase, tenant: string, title: string, chunks: RawChunk[], source = 'bench'): Promise<string> {
  const doc = await client.query(`insert into sheratan.documents (tenant, title, source) values ($1, $2, $3) returning id`, [tenant, title, source]);
  const params: unknown[] = [tenant, doc.rows[0].id];
  const values = chunks.map((chunk, i) => {
    params.push(i, chunk.content, toPgVector(chunk.embedding));
    const n = params.length;
    return `($1, $2, $${n - 2}, $${n - 1}, $${n}::vector)`;
  });
  await client.query(`insert into sheratan.document_chunks (tenant, document_id, chunk_index, content, embedding) values ${values.join(',')}`, params);
  return doc.rows[0].id as string;
}

/** The p-th percentile (nearest rank) of `xs`. */
export function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A GraphQL caller over a keep-alive agent (as a service calling the gateway would use); errors throw. */
export function graphqlClient(url: string, token: string, agent: http.Agent) {
  return async (query: string, variables: Record<string, unknown> = {}): Promise<Record<string, unknown>> => {
    const { body } = await postOnce(url, token, query, variables, agent);
    if (body.errors) throw new Error(body.errors[0]!.message);
    return body.data!;
  };
}

/**
 * Deletes every row of the benchmark tenants `which` selects (names `bench-…`),
 * as the owner: documents (their chunks by cascade), jobs, search and audit logs.
 */
export async function removeBenchTenants(pool: pg.Pool, which: (tenant: string) => boolean): Promise<void> {
  const { rows } = await pool.query<{ tenant: string }>(
    `select distinct tenant from sheratan.documents where tenant like 'bench-%'
     union select distinct tenant from sheratan.search_logs where tenant like 'bench-%'`,
  );
  const tenants = rows.map((r) => r.tenant).filter(which);
  if (!tenants.length) return;
  for (const table of ['documents', 'jobs', 'search_logs', 'audit_logs']) {
    await pool.query(`delete from sheratan.${table} where tenant = any ($1)`, [tenants]);
  }
}

/** A peer of the gateway (bench/peers/), running in its own process. */
export interface Peer {
  url: string;
  stop(): Promise<void>;
}

/** Starts `bench/peers/<name>.ts` against the authenticator's `authUrl`; resolves once it listens. */
export async function startPeer(name: string, authUrl: string, jwtSecret: string, poolSize: number): Promise<Peer> {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, 'peers', `${name}.ts`)], {
    env: {
      ...process.env,
      DATABASE_URL: authUrl,
      JWT_SECRET: jwtSecret,
      PORT: '0',
      POOL_SIZE: String(poolSize),
      NODE_ENV: 'production',
      METRICS_PUBLIC: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer ${name} did not start within 60 s:\n${output}`)), 60_000);
    const onData = (d: Buffer): void => {
      output += d.toString();
      const m = /listening (\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code) => reject(new Error(`peer ${name} exited (${code}) before it listened:\n${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** POSTs JSON to `url` over `agent` with a bearer token; resolves with the parsed reply, throws on a non-200. */
export async function postJson(url: string, token: string, payload: unknown, agent: http.Agent): Promise<Record<string, unknown>> {
  const { status, text } = await postText(url, token, JSON.stringify(payload), agent);
  if (status !== 200) throw new Error(`${url}: ${status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/**
 * Times `bodies` POSTed to `url` at `concurrency` from a load generator in a
 * process of its own (bench/load.ts), after `warm` untimed requests.
 */
export async function measureHttp(url: string, token: string, bodies: unknown[], concurrency: number, warm = 10): Promise<{ lat: number[]; qps: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-load-'));
  try {
    const file = path.join(dir, 'job.json');
    writeFileSync(file, JSON.stringify({ url, token, bodies: bodies.map((b) => JSON.stringify(b)), concurrency, warm }));
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [path.join(import.meta.dirname, 'load.ts'), file], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
        err ? reject(new Error(`the load generator failed: ${stderr || err.message}`)) : resolve(stdout),
      ),
    );
    return JSON.parse(out) as { lat: number[]; qps: number };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The benchmark's configuration, or one line saying what is wrong and exit 1
 * (not a stack): an invalid variable, or a server (DATABASE_URL) without
 * JWT_SECRET, with which the benchmark signs its tokens (the embedded data
 * directory generates its own).
 */
export function benchConfig<C extends { databaseUrl: string | undefined; jwtSecret: string | undefined }>(load: () => C): C {
  // The vector benchmarks bring their own 384-number vectors, as clients that bring vectors do
  // (README, "Embedding providers"); npm run bench:text measures the text path.
  process.env.EMBEDDING_PROVIDER ??= 'none';
  let config: C;
  try {
    config = load();
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(1);
  }
  if (config.databaseUrl && !config.jwtSecret) {
    process.stderr.write(
      "bench: JWT_SECRET must be set on a server (DATABASE_URL): the benchmark signs its tokens with the gateway's secret, e.g. JWT_SECRET=$(openssl rand -hex 32) npm run bench\n",
    );
    process.exit(1);
  }
  return config;
}

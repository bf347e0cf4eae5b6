// The client library as an ordinary Node project uses it: compiled by
// `npm run build`, imported as `sheratan-store/client` from a plain .mjs file
// (no TypeScript anywhere), storing, searching and running a job.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
const app = mkdtempSync(path.join(os.tmpdir(), 'sheratan-client-app-'));
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  rmSync(app, { recursive: true, force: true });
  await h.stop();
});

const APP = `
import { createStoreClient, runWorker } from 'sheratan-store/client';

const [url, token] = process.argv.slice(2);
const store = createStoreClient({ url, token });
const embedding = Array.from({ length: 384 }, (_, i) => (i === 1 ? 1 : 0.001));
const id = await store.ingest({ title: 'from a plain .mjs', source: 'client', chunks: [{ content: 'hello from JavaScript', embedding }] });
const matches = await store.search(embedding, { first: 1, filter: { sources: ['client'] } });
await store.request('mutation { enqueueJob(input: { jobType: "mjs", payload: { n: 2 } }) { clientMutationId } }');
const done = [];
const worker = runWorker({ url, token, jobTypes: ['mjs'], pollIntervalMs: 50, handleSignals: false, handler: async (job) => { done.push(job.payload); return { doubled: job.payload.n * 2 }; } });
while (done.length === 0) await new Promise((r) => setTimeout(r, 20));
await worker.stop();
let refused = null;
try { await store.search([1, 2, 3]); } catch (err) { refused = { name: err.name, message: err.message }; }
console.log(JSON.stringify({ id, top: matches[0].chunk.content, similarity: Math.round(matches[0].similarity * 1000) / 1000, done, refused }));
`;

test('npm run build compiles the client; a plain .mjs file imports sheratan-store/client and uses it', async () => {
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: projectRoot, encoding: 'utf8', timeout: 120_000 });
  expect({ status: build.status, output: build.stdout + build.stderr }).toEqual({ status: 0, output: '' });
  // An application with the repository installed as its dependency.
  mkdirSync(path.join(app, 'node_modules'));
  symlinkSync(projectRoot, path.join(app, 'node_modules', 'sheratan-store'), 'dir');
  writeFileSync(path.join(app, 'package.json'), '{ "name": "client-app", "private": true }\n');
  writeFileSync(path.join(app, 'app.mjs'), APP);
  // Asynchronously: the gateway it talks to runs in this process.
  const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['app.mjs', `${h.url}/graphql`, h.token('sheratan_app', 'acme', 'mjs')], { cwd: app, timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
  expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
  const out = JSON.parse(run.stdout) as Record<string, unknown>;
  expect(out).toMatchObject({
    top: 'hello from JavaScript',
    similarity: 1,
    done: [{ n: 2 }],
    refused: { name: 'GraphQLRequestError', message: expect.stringMatching(/expected 384 dimensions, not 3/) },
  });
  const job = await h.graphql<{ allJobs: { nodes: Array<{ status: string; result: unknown }> } }>(
    '{ allJobs(first: 1, condition: { jobType: "mjs" }) { nodes { status result } } }',
  );
  expect(job.body.data!.allJobs.nodes).toEqual([{ status: 'completed', result: { doubled: 4 } }]);
}, 180_000);

// The benchmark's load generator, in a process of its own, so that every
// system under test (the gateway and each peer) has its own process and the
// load never shares a thread with any of them. Reads a JSON job from the file
// named by argv[2] — { url, token, bodies, concurrency, warm } — POSTs each
// body (a JSON request, sent as is) over keep-alive connections, and prints
// { lat, qps } as JSON: each request's latency (ms) and requests per second.
// A non-200 reply, or a GraphQL reply with errors, ends it with exit code 1.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { postText } from '../test/support/processes.ts';

interface Job {
  url: string;
  token: string;
  bodies: string[];
  concurrency: number;
  /** Requests sent first and not timed (plans and caches warm up). */
  warm: number;
}

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Job;
const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });

async function send(body: string): Promise<void> {
  const { status, text } = await postText(job.url, job.token, body, agent);
  if (status !== 200 || text.startsWith('{"errors"') || text.includes('"errors":[')) throw new Error(`${job.url}: ${status} ${text.slice(0, 300)}`);
}

for (const body of job.bodies.slice(0, job.warm)) await send(body);
const lat: number[] = [];
let next = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: job.concurrency }, async () => {
    while (next < job.bodies.length) {
      const body = job.bodies[next++]!;
      const t = performance.now();
      await send(body);
      lat.push(performance.now() - t);
    }
  }),
);
const qps = job.bodies.length / ((performance.now() - started) / 1000);
agent.destroy();
process.stdout.write(JSON.stringify({ lat, qps }));

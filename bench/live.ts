// npm run bench:live [-- --tenants 10 --sockets 20 --events 100]: what the
// subscriptions hold and deliver (issue 27). A gateway on a fresh database
// (embedded, or TEST_DATABASE_URL's server) with the migration in progress;
// `tenants` × `sockets` graphql-ws sockets (the clients in this same process),
// each subscribed to documentChanged; then `events` documents stored in ONE
// tenant in one statement: each of that tenant's sockets receives every event,
// each event's row read again as its subscriber (one statement per event and
// subscriber). Prints sockets held, the process's memory per socket, and
// events delivered per second; writes bench/results/live-<backend>.json.
// Figures to read, never assertions.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { projectRoot } from '../src/config/paths.ts';
import { startPipeline } from '../test/embedding/pipeline-support.ts';

const { values } = parseArgs({
  options: { tenants: { type: 'string', default: '10' }, sockets: { type: 'string', default: '20' }, events: { type: 'string', default: '100' } },
});
const TENANTS = Number(values.tenants);
const SOCKETS = Number(values.sockets);
const EVENTS = Number(values.events);
const backend = process.env.TEST_DATABASE_URL ? 'server' : 'embedded';

const h = await startPipeline({
  EMBEDDING_PROVIDER: 'none',
  LIVE_MAX_SOCKETS_PER_TENANT: String(Math.max(SOCKETS, 1)),
  LIVE_MAX_QUEUED_EVENTS: String(EVENTS * 2),
});
const clients: Client[] = [];
try {
  const wsUrl = h.gateway.url.replace(/^http/, 'ws') + '/graphql';
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const received = new Map<string, number>();
  const connectStart = performance.now();
  const pending: Promise<void>[] = [];
  for (let t = 0; t < TENANTS; t++) {
    const tenant = `bench-${t}`;
    for (let s = 0; s < SOCKETS; s++) {
      let connected!: () => void;
      const ready = new Promise<void>((resolve) => (connected = resolve));
      const client = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        connectionParams: { authorization: `Bearer ${h.token(tenant)}` },
        on: {
          connected: () => connected(),
          closed: (e) => process.stderr.write(`socket ${t}/${s} closed: ${(e as { code?: number }).code} ${(e as { reason?: string }).reason}\n`),
        },
      });
      clients.push(client);
      // The clients share this process with the gateway: connected a batch at a time, each within graphql-ws's 3 s for connection_init.
      pending.push(ready);
      if (pending.length >= 50) await Promise.all(pending.splice(0));
      const key = `${t}/${s}`;
      received.set(key, 0);
      client.subscribe(
        { query: 'subscription { documentChanged { operation document { rowId title } } }' },
        {
          next: () => received.set(key, received.get(key)! + 1),
          error: (e) => process.stderr.write(`socket ${key}: ${String((e as { message?: string }).message ?? JSON.stringify(e))}\n`),
          complete: () => undefined,
        },
      );
    }
  }
  const live = h.gateway.gateway.liveEvents;
  const subscribedBy = Date.now() + 60_000;
  while (live.size < TENANTS * SOCKETS) {
    // Each socket is two file descriptors in this one process: `ulimit -n` bounds the sockets a run can hold.
    if (Date.now() > subscribedBy)
      throw new Error(`only ${live.size} of ${TENANTS * SOCKETS} subscriptions listening after 60 s (see the sockets closed above; ulimit -n?)`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await live.ready();
  const connectMs = performance.now() - connectStart;
  global.gc?.();
  const rssAfter = process.memoryUsage().rss;
  const stats = h.gateway.gateway.live.stats();
  process.stderr.write(`${stats.sockets} sockets held (${TENANTS} tenants × ${SOCKETS}), connected and subscribed in ${Math.round(connectMs)} ms\n`);

  const expected = SOCKETS * EVENTS;
  const t0 = performance.now();
  await h.sql(`insert into sheratan.documents (tenant, title, content) select 'bench-0', 'event ' || g, '' from generate_series(1, $1::int) g`, [EVENTS]);
  const total = (): number => [...received].filter(([k]) => k.startsWith('0/')).reduce((n, [, v]) => n + v, 0);
  const deadline = Date.now() + 300_000;
  while (total() < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - t0) / 1000;
  const delivered = total();
  const others = [...received].filter(([k]) => !k.startsWith('0/')).reduce((n, [, v]) => n + v, 0);
  const result = {
    backend,
    tenants: TENANTS,
    socketsPerTenant: SOCKETS,
    socketsHeld: stats.sockets,
    connectMs: Math.round(connectMs),
    rssPerSocketKiB: Math.round((rssAfter - rssBefore) / 1024 / (TENANTS * SOCKETS)),
    events: EVENTS,
    deliveriesExpected: expected,
    delivered,
    deliveredToOtherTenants: others,
    seconds: Number(seconds.toFixed(2)),
    eventsPerSecond: Math.round(delivered / seconds),
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  const dir = path.join(projectRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `live-${backend}.json`), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await Promise.all(clients.map((c) => c.dispose()));
  await h.stop();
}

// Hostile input as a class, not as cases: generated documents, variables,
// bodies and socket timings against the invariants the gateway promises
// (issue 25):
//   - whatever an unauthenticated request sends, it is answered (never a 5xx,
//     never a dropped socket unless it was too slow), refused before the work
//     when it passes a limit, and it neither holds the event loop nor grows
//     the heap beyond a bound;
//   - clients sending their bodies slowly hold no pool slot: another tenant's
//     searches keep answering;
//   - every limit holds for `null`, omitted and defaulted arguments exactly as
//     for the value the SQL will use (`first: null` costs what `first: 10` does);
//   - lists nothing bounds by argument (groupedAggregates) and inputs
//     (ingest: chunks × bytes) are costed and capped before anything is stored.
// The bounds asserted here are loose (the suite runs two files at once on two
// cores); `npm run bench:hostile` measures the same invariants and prints them.
import http from 'node:http';
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { startHarness, type Harness } from '../support/harness.ts';
import { randomUnit, rng } from '../support/embeddings.ts';
import { applyCurrentMigration } from '../support/current-migration.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MiB = 1024 * 1024;
let h: Harness;
const e = randomUnit(384, rng(25));

beforeAll(async () => {
  // BODY_TIMEOUT_MS: short for the slow-body test, yet long enough for this file's 8 MB ingest bodies on a loaded machine.
  h = await startHarness({ EMBEDDING_PROVIDER: 'none', BODY_TIMEOUT_MS: '5000', MAX_PAGE_SIZE: '40' });
  await applyCurrentMigration(h);
  const chunks = Array.from({ length: 3 }, (_, i) => ({ content: `hostile ${i}`, embedding: randomUnit(384, rng(100 + i)) }));
  for (const tenant of ['acme', 'other']) {
    const res = await h.graphql('mutation ($c: [ChunkInput]!) { ingestDocument(input: { title: "t", chunks: $c }) { clientMutationId } }', {
      variables: { c: chunks },
      token: h.token('sheratan_app', tenant),
    });
    expect(res.body.errors).toBeUndefined();
  }
});
afterAll(() => h?.stop());

/** One raw POST: resolves with the status and body text, or with the socket's fate. */
function post(body: Buffer | string, headers: Record<string, string> = {}): Promise<{ status: number; text: string } | { error: string }> {
  return new Promise((resolve) => {
    const payload = typeof body === 'string' ? Buffer.from(body) : body;
    const req = http.request(
      `${h.url}/graphql`,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': String(payload.length), ...headers } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(parts).toString() }));
        res.on('error', (err) => resolve({ error: err.message }));
      },
    );
    req.on('error', (err) => resolve({ error: err.message }));
    req.end(payload);
  });
}

/** A seeded generator of hostile GraphQL documents: shapes that made parsing, validation or planning costly. */
function hostileDocuments(seed: number, count: number): Array<{ shape: string; query: string }> {
  const next = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const n = (lo: number, hi: number): number => Math.floor(lo + next() * (hi - lo));
  const pad = (): string => pick([' ', '\n', ',', ' # c\n', '\t', ',,,,', '\ufeff']);
  const shapes: Record<string, () => string> = {
    aliases: () => `{ ${Array.from({ length: n(40, 6000) }, (_, i) => `a${i}:${pad()}__typename`).join(pad())} }`,
    paddedAliases: () => `{ ${Array.from({ length: n(51, 400) }, (_, i) => `a${i}: allDocuments { totalCount }${pad().repeat(n(1, 400))}`).join(' ')} }`,
    directives: () => `{ __typename ${Array.from({ length: n(50, 60_000) }, () => '@skip(if: false)').join(' ')} }`,
    fields: () => `{ ${Array.from({ length: n(500, 20_000) }, () => '__typename').join(' ')} }`,
    tokens: () => `{ __typename } # ${'x '.repeat(n(1000, 50_000))}\n${'{ '.repeat(n(10, 20_000))}`,
    deep: () => `{ ${'allDocuments(first: 1) { nodes { chunks(first: 1) { nodes { document { '.repeat(n(2, 60))} title ${'} } } } } '.repeat(3)}}`,
    numbers: () => `{ searchDocumentChunks(embedding: [${Array.from({ length: n(384, 40_000) }, () => next().toFixed(6)).join(',')}]) { distance } }`,
    strings: () => `{ __typename(x: "${'z'.repeat(n(1000, 2_000_000))}") }`,
    fragments: () => {
      const k = n(2, 300);
      const defs = Array.from({ length: k }, (_, i) => `fragment F${i} on Query { ...F${(i + 1) % k} __typename }`).join('\n');
      return `{ ...F0 }\n${defs}`;
    },
    wideFragments: () => {
      const k = n(2, 400);
      return `{ ${Array.from({ length: k }, (_, i) => `...W${i}`).join(' ')} }\n${Array.from({ length: k }, (_, i) => `fragment W${i} on Query { __typename }`).join('\n')}`;
    },
    variables: () => `query (${Array.from({ length: n(10, 5000) }, (_, i) => `$v${i}: Int`).join(' ')}) { __typename }`,
  };
  return Array.from({ length: count }, () => {
    const shape = pick(Object.keys(shapes));
    return { shape, query: shapes[shape]!() };
  });
}

const REFUSALS = new Set([
  'DOCUMENT_TOO_LARGE',
  'TOO_MANY_TOKENS',
  'TOO_MANY_DIRECTIVES',
  'TOO_MANY_FRAGMENTS',
  'TOO_MANY_VARIABLES',
  'TOO_MANY_ALIASES',
  'TOO_MANY_FIELDS',
  'BODY_TOO_LARGE',
]);

test('no generated anonymous document gets a 5xx, holds the event loop or grows the heap: each is answered or refused naming its limit', async () => {
  const documents = hostileDocuments(4242, 40);
  // Whole bodies too: giant documents, giant variables, JSON nesting, garbage.
  const bodies: Array<{ shape: string; body: Buffer }> = [
    ...documents.map(({ shape, query }) => ({ shape, body: Buffer.from(JSON.stringify({ query })) })),
    { shape: '15 MiB document', body: Buffer.from(JSON.stringify({ query: `{ ${'a: __typename '.repeat(Math.ceil((15 * MiB) / 15))} }` })) },
    { shape: '15 MiB variables', body: Buffer.from(JSON.stringify({ query: '{ __typename }', variables: { x: 'y'.repeat(15 * MiB) } })) },
    { shape: 'nested JSON', body: Buffer.from(`{"query":"{ __typename }","variables":{"x":${'['.repeat(50_000)}${']'.repeat(50_000)}}}`) },
    { shape: 'garbage', body: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)) },
  ];
  const lag = monitorEventLoopDelay({ resolution: 5 });
  const worst = { lagMs: 0, heapMiB: 0, ms: 0, shape: '' };
  for (const { shape, body } of bodies) {
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    lag.reset();
    lag.enable();
    const started = performance.now();
    const reply = await post(body);
    const ms = performance.now() - started;
    lag.disable();
    gc();
    const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / MiB;
    const lagMs = lag.max / 1e6;
    if (lagMs > worst.lagMs) Object.assign(worst, { lagMs, shape });
    worst.heapMiB = Math.max(worst.heapMiB, heapMiB);
    worst.ms = Math.max(worst.ms, ms);
    expect({ shape, reply: 'error' in reply ? reply.error : reply.status }).toEqual({ shape, reply: expect.any(Number) });
    const { status, text } = reply as { status: number; text: string };
    // 401: a document within every limit that selects data, from a request without a token.
    expect({ shape, status: [200, 400, 401, 413].includes(status) ? 'answered' : status }).toEqual({ shape, status: 'answered' });
    if (status !== 200) {
      // A refusal says what is wrong: one of the limits by code, or a syntax/validation error message.
      const error = (JSON.parse(text) as { errors: Array<{ message: string; extensions?: { code?: string } }> }).errors[0]!;
      expect(error.message.length).toBeGreaterThan(0);
      if (error.extensions?.code && REFUSALS.has(error.extensions.code)) expect(error.message).toMatch(/\(MAX_[A-Z_]+/);
    }
    expect({ shape, heapUnder50MiB: heapMiB < 50 }).toEqual({ shape, heapUnder50MiB: true });
  }
  console.log(
    `hostile documents: worst event-loop delay ${worst.lagMs.toFixed(1)} ms (${worst.shape}), heap growth ${worst.heapMiB.toFixed(1)} MiB, slowest answer ${worst.ms.toFixed(0)} ms`,
  );
  // The invariant is 50 ms (bench:hostile measures it alone on the machine); here two test files share two
  // cores and this process's own garbage collection counts too, so only an order-of-magnitude regression fails.
  expect(worst.lagMs).toBeLessThan(1000);
}, 240_000);

test('a 15 MiB anonymous body is refused from its Content-Length, before it is read', async () => {
  const started = performance.now();
  const reply = await post(Buffer.alloc(15 * MiB, 0x20));
  expect(reply).toMatchObject({ status: 413 });
  expect(JSON.parse((reply as { text: string }).text).errors[0]).toMatchObject({
    message: 'the request body is larger than 65536 bytes (MAX_ANONYMOUS_BODY_BYTES: send a token to send more)',
    extensions: { code: 'BODY_TOO_LARGE' },
  });
  expect(performance.now() - started).toBeLessThan(5000);
  // With a token the same size is read, and its document is refused by size before it is parsed.
  const query = `{ ${'a: __typename '.repeat(Math.ceil((3.8 * MiB) / 15))} }`;
  const withToken = await post(JSON.stringify({ query }), { authorization: `Bearer ${h.token()}` });
  expect(withToken).toMatchObject({ status: 400 });
  expect(JSON.parse((withToken as { text: string }).text).errors[0].extensions.code).toBe('DOCUMENT_TOO_LARGE');
});

test('slow bodies hold no pool slot: 100 sockets trickling bodies leave another tenant searching, then get 408', async () => {
  const sockets: net.Socket[] = [];
  const fates: Array<Promise<string>> = [];
  for (let i = 0; i < 100; i++) {
    const socket = net.connect(Number(new URL(h.url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    const token = i % 2 === 0 ? '' : `Authorization: Bearer ${h.token('sheratan_app', 'acme')}\r\n`;
    socket.write(`POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${token}Content-Length: 1000\r\n\r\n{"query":`);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    fates.push(new Promise((resolve) => socket.on('close', () => resolve(answer.split('\r\n')[0] ?? ''))));
    sockets.push(socket);
  }
  const drip = setInterval(() => sockets.forEach((s) => s.writable && s.write(' ')), 200);
  try {
    const other = h.token('sheratan_app', 'other');
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      const res = await h.graphql('query ($q: Vector!) { searchDocumentChunks(embedding: $q, first: 3) { distance } }', { variables: { q: e }, token: other });
      expect(res.status).toBe(200);
      expect(res.body.errors).toBeUndefined();
      expect(performance.now() - started).toBeLessThan(3000);
    }
    const answers = await Promise.all(fates);
    expect(answers.every((line) => line === 'HTTP/1.1 408 Request Timeout')).toBe(true);
  } finally {
    clearInterval(drip);
    sockets.forEach((s) => s.destroy());
  }
});

/** A search nested `depth` levels through similarChunks, each level's `first` written as `first`. */
const nested = (depth: number, first: string): string => {
  let inner = 'rowId';
  for (let i = 0; i < depth; i++) inner = `similarChunks(first: ${first}) { chunk { ${inner} } }`;
  return `query ($q: Vector!${first === '$n' ? ', $n: Int' : ''}) { searchDocumentChunks(embedding: $q, first: ${first}) { chunk { ${inner} } } }`;
};

test('first: null, a null variable, or an omitted first is costed as the default the SQL uses, at every depth', async () => {
  const errorOf = async (query: string, variables: Record<string, unknown>) => {
    const res = await h.graphql(query, { variables: { q: e, ...variables } });
    return res.body.errors?.[0] ? { message: res.body.errors[0].message, code: res.body.errors[0].extensions?.code } : 'ok';
  };
  for (let depth = 0; depth <= 4; depth++) {
    const asTen = await errorOf(nested(depth, '10'), {});
    for (const [form, variables] of [
      ['null', {}],
      ['$n', { n: null }],
      ['$n', {}],
    ] as const) {
      expect({ depth, form, answer: await errorOf(nested(depth, form), variables) }).toEqual({ depth, form, answer: asTen });
    }
    // An omitted first is the default too.
    expect({ depth, omitted: await errorOf(nested(depth, '10').replaceAll('(first: 10)', '').replace(', first: 10)', ')'), {}) }).toEqual({
      depth,
      omitted: asTen,
    });
  }
  // And depth 2 with first 10 is already too many searches (1 + 10 + 100).
  expect(await errorOf(nested(2, 'null'), {})).toMatchObject({ code: 'TOO_MANY_SEARCHES' });
});

test('groupedAggregates cannot return more groups than MAX_PAGE_SIZE: refused in the statement, and costed at its cap', async () => {
  const token = h.token('sheratan_app', 'groups');
  const titles = Array.from({ length: 41 }, (_, i) => `g${i}`);
  for (const title of titles) {
    const res = await h.graphql('mutation ($t: String!) { ingestDocument(input: { title: $t, source: $t, chunks: [] }) { clientMutationId } }', {
      variables: { t: title },
      token,
    });
    expect(res.body.errors).toBeUndefined();
  }
  const over = await h.graphql('{ allDocuments { groupedAggregates(groupBy: [SOURCE]) { keys } } }', { token });
  expect(over.body.errors?.[0]).toMatchObject({ message: expect.stringContaining('more than 40 groups (MAX_PAGE_SIZE)'), extensions: { code: '54000' } });
  const under = await h.graphql('{ allDocuments(condition: { source: "g1" }) { groupedAggregates(groupBy: [SOURCE]) { keys } } }', { token });
  expect(under.body.errors).toBeUndefined();
  expect(under.body.data).toEqual({ allDocuments: { groupedAggregates: [{ keys: ['g1'] }] } });
  // Costed as its cap (40 groups) wherever it is: under 40 × 40 chunks' documents that passes MAX_QUERY_COST.
  const costly = await h.graphql(
    '{ allDocuments(first: 40) { nodes { chunks(first: 40) { nodes { document { chunks { groupedAggregates(groupBy: [CHUNK_INDEX]) { keys sum { tokenCount } } } } } } } } }',
    { token },
  );
  expect(costly.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COSTLY');
});

test('ingest is costed by its chunks and bytes before anything is stored', async () => {
  const owner = await h.owner();
  const count = async (): Promise<number> => (await owner.query('select count(*)::int as n from sheratan.document_chunks')).rows[0].n;
  const before = await count();
  // Short numbers, so that 5,000 chunks fit in MAX_BODY_BYTES as they did for the attacker.
  const short = e.map((x) => Math.round(x * 100) / 100);
  const manyChunks = Array.from({ length: 5000 }, (_, i) => ({ content: `c${i}`, embedding: short }));
  const many = await h.graphql('mutation ($c: [ChunkInput]!) { ingestDocument(input: { title: "many", chunks: $c }) { clientMutationId } }', {
    variables: { c: manyChunks },
  });
  expect(many.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COSTLY');
  const huge = await h.graphql('mutation ($c: [ChunkInput]!) { ingestDocument(input: { title: "huge", chunks: $c }) { clientMutationId } }', {
    variables: { c: [{ content: 'x'.repeat(12 * MiB), embedding: e }] },
  });
  expect(huge.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COSTLY');
  expect(await count()).toBe(before);
  const fine = await h.graphql('mutation ($c: [ChunkInput]!) { ingestDocument(input: { title: "fine", chunks: $c }) { clientMutationId } }', {
    variables: { c: manyChunks.slice(0, 100) },
  });
  expect(fine.body.errors).toBeUndefined();
  expect(await count()).toBe(before + 100);
});

test('a NUL character anywhere in an argument is refused naming where it is, before anything runs, and stores nothing', async () => {
  const owner = await h.owner();
  const count = async (): Promise<number> =>
    (await owner.query('select (select count(*) from sheratan.documents) + (select count(*) from sheratan.jobs) as n')).rows[0].n;
  const before = await count();
  const nul = 'a\u0000b';
  const cases: Array<[query: string, variables: Record<string, unknown>, path: RegExp]> = [
    [
      'mutation ($i: IngestDocumentInput!) { ingestDocument(input: $i) { clientMutationId } }',
      { i: { title: nul, chunks: [] } },
      /ingestDocument\(input\.title\)/,
    ],
    ['mutation ($i: IngestDocumentInput!) { ingestDocument(input: $i) { clientMutationId } }', { i: { title: 't', source: nul, chunks: [] } }, /input\.source/],
    [
      'mutation ($i: IngestDocumentInput!) { ingestDocument(input: $i) { clientMutationId } }',
      { i: { title: 't', metadata: { deep: [{ k: nul }] }, chunks: [] } },
      /input\.metadata\.deep\[0\]\.k/,
    ],
    [
      'mutation ($i: IngestDocumentInput!) { ingestDocument(input: $i) { clientMutationId } }',
      { i: { title: 't', chunks: [{ content: nul, embedding: e }] } },
      /input\.chunks\[0\]\.content/,
    ],
    ['mutation ($t: String!) { enqueueJob(input: { jobType: $t }) { clientMutationId } }', { t: nul }, /enqueueJob\(input\.jobType\)/],
    [
      'query ($q: Vector!, $s: [String!]) { searchDocumentChunks(embedding: $q, filter: { sources: $s }) { distance } }',
      { q: e, s: ['ok', nul] },
      /filter\.sources\[1\]/,
    ],
  ];
  for (const [query, variables, path] of cases) {
    const res = await h.graphql(query, { variables });
    expect({ path: String(path), error: res.body.errors?.[0]?.extensions?.code, message: path.test(res.body.errors?.[0]?.message ?? '') }).toEqual({
      path: String(path),
      error: 'TEXT_HAS_NUL',
      message: true,
    });
  }
  expect(await count()).toBe(before);
});

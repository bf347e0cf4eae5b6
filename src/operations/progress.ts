// Progress and ETA for commands that take more than a few seconds (index
// builds, backup and restore, the benchmark): on a terminal one bar redrawn in
// place; otherwise (a pipe, a log collector, CI) one JSON log line every few
// seconds, in the shape of config/log.ts's lines, so nothing is silent for
// minutes and nothing floods a log. Both go to stderr: stdout stays the
// command's result.

/** Where progress is written: a stream, with isTTY/columns when it is a terminal. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Default: process.stderr. */
  stream?: ProgressStream;
  /** What is counted (chunks, bytes, tuples, queries…); `bytes` is shown as KB/MB/GB. */
  unit?: string;
  /** The amount to reach, when known (the ETA needs it). */
  total?: number | null;
  /** The clock (ms); tests drive it. */
  now?: () => number;
  /** The least time between two redraws on a terminal (ms). */
  ttyIntervalMs?: number;
  /** The least time between two JSON lines (ms). */
  lineIntervalMs?: number;
  /** Whether JSON lines are written when not on a terminal: they are info log lines, so LOG_LEVEL above info turns them off. */
  lines?: boolean;
}

/** The JSON lines' switch for a configuration's LOG_LEVEL (they are info lines). */
export const progressLines = (logLevel: string): boolean => logLevel === 'debug' || logLevel === 'info';

export interface ProgressState {
  task: string;
  done: number;
  total: number | null;
  unit: string;
  phase: string | null;
  elapsedS: number;
  /** Seconds left at the rate so far; null while it cannot be known. */
  etaS: number | null;
  percent: number | null;
}

const BAR_WIDTH = 24;

/** 1,234 chunks; 12.3 MB. */
export function formatAmount(n: number, unit: string): string {
  if (unit !== 'bytes') return `${Math.round(n).toLocaleString('en-US')} ${unit}`;
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** 0:07, 1:02:03. */
export function formatDuration(s: number): string {
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

export class Progress {
  readonly task: string;
  private readonly stream: ProgressStream;
  private unit: string;
  private readonly now: () => number;
  private readonly tty: boolean;
  private readonly ttyIntervalMs: number;
  private readonly lineIntervalMs: number;
  private readonly lines: boolean;
  private readonly started: number;
  private total: number | null;
  private done = 0;
  private phase: string | null = null;
  private lastDraw = -Infinity;
  private ended = false;

  constructor(task: string, options: ProgressOptions = {}) {
    this.task = task;
    this.stream = options.stream ?? process.stderr;
    this.unit = options.unit ?? 'items';
    this.total = options.total ?? null;
    this.now = options.now ?? Date.now;
    this.tty = this.stream.isTTY === true;
    this.ttyIntervalMs = options.ttyIntervalMs ?? 100;
    this.lineIntervalMs = options.lineIntervalMs ?? 2000;
    this.lines = options.lines ?? true;
    this.started = this.now();
    this.emit(true);
  }

  /** What is known now: the amount done, and the total and phase when they changed. */
  update(done: number, fields: { total?: number | null; phase?: string | null; unit?: string } = {}): void {
    if (this.ended) return;
    this.done = done;
    if (fields.unit !== undefined) this.unit = fields.unit;
    if (fields.total !== undefined) this.total = fields.total;
    const phaseChanged = fields.phase !== undefined && fields.phase !== this.phase;
    if (fields.phase !== undefined) this.phase = fields.phase;
    this.emit(phaseChanged);
  }

  state(): ProgressState {
    const elapsedS = (this.now() - this.started) / 1000;
    const total = this.total;
    const percent = total && total > 0 ? Math.min(100, (this.done / total) * 100) : null;
    const rate = elapsedS > 0 ? this.done / elapsedS : 0;
    const etaS = total !== null && total > 0 && rate > 0 && this.done > 0 ? Math.max(0, (total - this.done) / rate) : null;
    return { task: this.task, done: this.done, total, unit: this.unit, phase: this.phase, elapsedS, etaS, percent };
  }

  /** The end: the last line (a finished bar, or a JSON line with `done: true`), with what happened. */
  finish(summary?: string): void {
    if (this.ended) return;
    // Finished work is all of it, whatever the last poll saw.
    if (this.total !== null) this.done = this.total;
    this.render(true, summary ?? 'done');
    this.ended = true;
  }

  /** The end after a failure: the line says so (the error itself is the caller's to report). */
  fail(reason: string): void {
    if (this.ended) return;
    this.render(true, `failed: ${reason}`);
    this.ended = true;
  }

  private emit(force: boolean): void {
    const t = this.now();
    if (!force && t - this.lastDraw < (this.tty ? this.ttyIntervalMs : this.lineIntervalMs)) return;
    this.lastDraw = t;
    this.render(false);
  }

  private render(final: boolean, outcome?: string): void {
    const s = this.state();
    if (!this.tty) {
      if (!this.lines) return;
      const line: Record<string, unknown> = {
        time: new Date().toISOString(),
        level: outcome?.startsWith('failed') ? 'error' : 'info',
        msg: `${this.task}: ${final ? outcome : 'in progress'}`,
        task: this.task,
        done: s.done,
        total: s.total,
        unit: s.unit,
        ...(s.percent !== null ? { percent: Math.round(s.percent * 10) / 10 } : {}),
        ...(s.phase ? { phase: s.phase } : {}),
        elapsed_s: Math.round(s.elapsedS * 10) / 10,
        ...(!final && s.etaS !== null ? { eta_s: Math.round(s.etaS) } : {}),
        ...(final ? { finished: true } : {}),
      };
      this.stream.write(`${JSON.stringify(line)}\n`);
      return;
    }
    const amount = s.total !== null ? `${formatAmount(s.done, s.unit)} of ${formatAmount(s.total, s.unit)}` : formatAmount(s.done, s.unit);
    let bar: string;
    if (s.percent !== null) {
      const filled = Math.round((s.percent / 100) * BAR_WIDTH);
      bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${s.percent.toFixed(0).padStart(3)}%`;
    } else {
      // No total: a marker that moves, so a live command never looks stuck.
      const at = Math.floor(s.elapsedS * 4) % BAR_WIDTH;
      bar = `[${'.'.repeat(at)}#${'.'.repeat(BAR_WIDTH - at - 1)}]`;
    }
    const tail = final
      ? `${outcome} in ${formatDuration(s.elapsedS)}`
      : `${formatDuration(s.elapsedS)} elapsed${s.etaS !== null ? `, ETA ${formatDuration(s.etaS)}` : ''}`;
    const rest = `${amount}${s.phase ? ` (${s.phase})` : ''}, ${tail}`;
    let text = `${this.task} ${bar} ${rest}`;
    // A narrow terminal loses the bar first, then the end of the line (a line that wraps is not redrawn in place).
    const width = this.stream.columns ?? 100;
    if (!final && text.length > width - 1) text = `${this.task} ${rest}`;
    if (!final && text.length > width - 1) text = `${text.slice(0, width - 2)}…`;
    // \r and erase-line: the bar is redrawn in place; the final one ends the line.
    this.stream.write(`\r\x1b[2K${text}${final ? '\n' : ''}`);
  }
}

/**
 * Runs `work` with a progress display that `poll` feeds every `pollMs` (e.g.
 * from pg_stat_progress_create_index on another connection); the display
 * ends with the work, saying how it went.
 */
export async function withProgress<T>(
  progress: Progress,
  work: Promise<T>,
  poll?: () => Promise<{ done: number; total?: number | null; phase?: string | null; unit?: string } | null>,
  pollMs = 500,
): Promise<T> {
  let stopped = false;
  const ticker = (async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, pollMs));
      if (stopped) break;
      const seen = poll ? await poll().catch(() => null) : null;
      if (stopped) break;
      if (seen) progress.update(seen.done, { total: seen.total, phase: seen.phase, unit: seen.unit });
      else progress.update(progress.state().done);
    }
  })();
  try {
    const result = await work;
    stopped = true;
    await ticker;
    progress.finish();
    return result;
  } catch (err) {
    stopped = true;
    await ticker;
    progress.fail((err as Error).message?.split('\n')[0] ?? String(err));
    throw err;
  }
}

/**
 * What a server says of an index build on `table` (pg_stat_progress_create_index,
 * which pgvector fills while it loads tuples into HNSW or IVFFlat): tuples when it
 * counts them, else blocks; null when no build is running (yet).
 */
export async function indexBuildProgress(
  client: { query: <R extends object>(sql: string, params?: unknown[]) => Promise<{ rows: R[] }> },
  table: string,
): Promise<{ done: number; total: number | null; phase: string; unit: string } | null> {
  const row = (
    await client.query<{ phase: string; tuples_total: string; tuples_done: string; blocks_total: string; blocks_done: string }>(
      `select phase, tuples_total::text, tuples_done::text, blocks_total::text, blocks_done::text
         from pg_stat_progress_create_index where relid = to_regclass($1)`,
      [table],
    )
  ).rows[0];
  if (!row) return null;
  const tuples = Number(row.tuples_total);
  if (tuples > 0) return { done: Number(row.tuples_done), total: tuples, phase: row.phase, unit: 'tuples' };
  const blocks = Number(row.blocks_total);
  if (blocks > 0) return { done: Number(row.blocks_done), total: blocks, phase: row.phase, unit: 'blocks' };
  return { done: 0, total: null, phase: row.phase, unit: 'tuples' };
}

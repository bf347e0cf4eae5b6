// The progress display of long commands (src/operations/progress.ts): a bar
// redrawn in place on a terminal, JSON lines otherwise, an ETA from the rate
// so far; driven here by a fake terminal and a fake clock.
import { formatAmount, formatDuration, Progress, withProgress, type ProgressStream } from '../../src/operations/progress.ts';

function fakeStream(tty: boolean, columns = 120): ProgressStream & { out: string[] } {
  const out: string[] = [];
  return { out, isTTY: tty, columns, write: (chunk: string) => out.push(chunk) };
}

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

test('on a terminal: one line redrawn in place with the bar, the amount, the elapsed time and the ETA; the end leaves it finished', () => {
  const tty = fakeStream(true);
  const c = clock();
  const p = new Progress('index build', { stream: tty, unit: 'tuples', total: 20_000, now: c.now });
  c.advance(10_000);
  p.update(5_000, { phase: 'loading tuples' });
  c.advance(10_000);
  p.update(10_000);
  p.finish();
  // Every redraw returns to the start of the line and clears it; only the last ends it.
  for (const chunk of tty.out) expect(chunk.startsWith('\r\x1b[2K')).toBe(true);
  expect(tty.out.filter((c) => c.endsWith('\n'))).toHaveLength(1);
  expect(tty.out.at(-1)!.endsWith('\n')).toBe(true);
  const lines = tty.out.map((c) => c.replace('\r\x1b[2K', '').replace('\n', ''));
  expect(lines[1]).toBe('index build [######..................]  25% 5,000 tuples of 20,000 tuples (loading tuples), 0:10 elapsed, ETA 0:30');
  expect(lines[2]).toBe('index build [############............]  50% 10,000 tuples of 20,000 tuples (loading tuples), 0:20 elapsed, ETA 0:20');
  expect(lines[3]).toBe('index build [########################] 100% 20,000 tuples of 20,000 tuples (loading tuples), done in 0:20');
});

test('on a terminal, redraws are throttled and a line never outgrows the terminal', () => {
  const tty = fakeStream(true, 40);
  const c = clock();
  const p = new Progress('backup', { stream: tty, unit: 'bytes', now: c.now, ttyIntervalMs: 100 });
  for (let i = 1; i <= 100; i++) {
    c.advance(10);
    p.update(i * 1_000_000);
  }
  // 1,000 ms of updates every 10 ms: the first draw and about one every 100 ms.
  expect(tty.out.length).toBeGreaterThanOrEqual(10);
  expect(tty.out.length).toBeLessThanOrEqual(12);
  for (const chunk of tty.out) expect(chunk.replace('\r\x1b[2K', '').length).toBeLessThanOrEqual(39);
  // Without a total there is no percentage and no ETA, but the amount grows.
  expect(tty.out.at(-1)).toMatch(/MB/);
  expect(tty.out.join('')).not.toMatch(/ETA|%/);
});

test('not on a terminal: JSON log lines, at most one per interval, with done, total, percent and eta_s; the last one says finished', () => {
  const pipe = fakeStream(false);
  const c = clock();
  const p = new Progress('restore', { stream: pipe, unit: 'bytes', total: 1_000, now: c.now, lineIntervalMs: 5_000 });
  for (let i = 1; i <= 20; i++) {
    c.advance(1_000);
    p.update(i * 40);
  }
  p.finish('restored');
  const lines = pipe.out.map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(pipe.out.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
  // The start, one every 5 s over 20 s, and the end.
  expect(lines).toHaveLength(6);
  expect(lines[0]).toMatchObject({ level: 'info', task: 'restore', done: 0, total: 1_000, unit: 'bytes', msg: 'restore: in progress' });
  expect(lines[1]).toMatchObject({ done: 200, percent: 20, elapsed_s: 5, eta_s: 20 });
  expect(lines.at(-1)).toMatchObject({ done: 1_000, percent: 100, finished: true, msg: 'restore: restored', elapsed_s: 20 });
  expect(lines.at(-1)).not.toHaveProperty('eta_s');
});

test('withProgress feeds the display from a poll while the work runs, and a failure ends it saying so', async () => {
  const pipe = fakeStream(false);
  let polled = 0;
  const p = new Progress('index build', { stream: pipe, unit: 'tuples', lineIntervalMs: 0 });
  const result = await withProgress(
    p,
    new Promise<string>((resolve) => setTimeout(() => resolve('built'), 300)),
    async () => ({ done: ++polled * 10, total: 100, phase: 'building' }),
    20,
  );
  expect(result).toBe('built');
  const lines = pipe.out.map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.length).toBeGreaterThan(3);
  expect(lines.some((l) => l.phase === 'building' && typeof l.done === 'number' && (l.done as number) > 0)).toBe(true);
  expect(lines.at(-1)).toMatchObject({ finished: true, done: 100 });

  const failing = fakeStream(false);
  const q = new Progress('backup', { stream: failing, lineIntervalMs: 0 });
  await expect(withProgress(q, Promise.reject(new Error('pg_dump: connection refused\nmore')), undefined, 20)).rejects.toThrow('connection refused');
  expect(JSON.parse(failing.out.at(-1)!)).toMatchObject({ level: 'error', msg: 'backup: failed: pg_dump: connection refused', finished: true });
});

test('amounts and durations read as people write them', () => {
  expect(formatAmount(93_400_000, 'bytes')).toBe('93.4 MB');
  expect(formatAmount(512, 'bytes')).toBe('512 B');
  expect(formatAmount(20_000, 'chunks')).toBe('20,000 chunks');
  expect(formatDuration(7)).toBe('0:07');
  expect(formatDuration(82)).toBe('1:22');
  expect(formatDuration(3723)).toBe('1:02:03');
});

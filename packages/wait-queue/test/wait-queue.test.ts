// @sheratan/wait-queue, the one wait-with-deadline rule shared by admission
// (src/http/admission.ts) and the embedded engine's backend (PgDatabase), as
// a class: generated schedules of waits (with and without deadlines and
// abort signals), wakes, deadlines passing and callers giving up, in the same
// turn of the event loop or not. What must hold in every schedule:
//   - each wait ends exactly once, in one of its three ways;
//   - a woken waiter gets the value it was woken with, and turns go in
//     arrival order among those still waiting;
//   - a waiter that timed out or was abandoned is never woken after, and
//     wakeNext skips nobody: it returns false only when nobody waits;
//   - nobody is left waiting once every waiter has ended.
import { WaitQueue, type WaitOutcome } from '@sheratan/wait-queue';

/** A seeded generator (mulberry32), so that a failing schedule can be run again. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('every wait ends once: woken in arrival order with its value, or timed out, or abandoned, and never woken after (generated schedules)', async () => {
  const next = rng(2024);
  for (let round = 0; round < 40; round++) {
    const queue = new WaitQueue<number>();
    const waiters: Array<{ id: number; controller: AbortController; outcome?: WaitOutcome<number>; ends: number; deadline: number }> = [];
    const woken: Array<{ value: number; id: number | undefined }> = [];
    let wakes = 0;
    let value = 0;
    const steps = 10 + Math.floor(next() * 30);
    for (let step = 0; step < steps; step++) {
      const r = next();
      if (r < 0.45) {
        const id = waiters.length;
        const controller = new AbortController();
        const deadline = next() < 0.5 ? Infinity : Math.floor(next() * 8);
        const w: (typeof waiters)[number] = { id, controller, ends: 0, deadline };
        waiters.push(w);
        void queue.wait(deadline, next() < 0.6 ? controller.signal : undefined).then((outcome) => {
          w.ends++;
          w.outcome = outcome;
          if (typeof outcome === 'object') woken.push({ value: outcome.turn, id });
        });
      } else if (r < 0.75) {
        const waitingBefore = queue.length;
        const v = value++;
        const did = queue.wakeNext(v);
        expect(did).toBe(waitingBefore > 0);
        if (did) wakes++;
      } else if (r < 0.9) {
        const candidates = waiters.filter((w) => !w.controller.signal.aborted);
        candidates[Math.floor(next() * candidates.length)]?.controller.abort();
      } else {
        await tick(Math.floor(next() * 6));
      }
      if (next() < 0.3) await Promise.resolve();
    }
    // Everyone still waiting is woken, in order; then every wait has ended.
    while (queue.wakeNext(value++)) wakes++;
    await tick(10);
    expect(queue.length).toBe(0);
    for (const w of waiters) expect([w.id, w.ends]).toEqual([w.id, 1]);
    // As many woken as wakes that found someone, each with its own value, in increasing order (arrival order).
    expect(woken.length).toBe(wakes);
    const values = woken.map((w) => w.value);
    expect(new Set(values).size).toBe(values.length);
    const ids = woken.map((w) => w.id!);
    const byValue = [...woken].sort((a, b) => a.value - b.value).map((w) => w.id);
    expect(byValue).toEqual([...byValue].sort((a, b) => a! - b!));
    // A waiter that timed out or was abandoned was never woken.
    for (const w of waiters.filter((x) => typeof x.outcome !== 'object')) expect(ids).not.toContain(w.id);
  }
});

test('an aborted signal or a deadline of 0 ends the wait before it starts; a woken waiter keeps its turn past its deadline', async () => {
  const queue = new WaitQueue();
  const controller = new AbortController();
  controller.abort();
  expect(await queue.wait(1000, controller.signal)).toBe('abandoned');
  expect(await queue.wait(0)).toBe('timeout');
  expect(queue.length).toBe(0);
  // Woken, then its deadline passes before its continuation runs: the turn is still its.
  const waiting = queue.wait(1);
  queue.wakeNext();
  const busy = Date.now() + 5;
  while (Date.now() < busy) {
    /* the deadline passes with the event loop blocked */
  }
  expect(await waiting).toEqual({ turn: undefined });
  expect(queue.wakeNext()).toBe(false);
});

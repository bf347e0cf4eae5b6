// Waiting for a scarce thing, with a deadline: the one rule the gateway's
// admission (a slot of its pool, src/http/admission.ts) and the embedded
// engine (its one backend, @sheratan/pglite-server's PgDatabase) share.
//
// Each waiter ends in exactly one way, decided once: woken in its turn (the
// value it was woken with is its), its deadline passed, or its caller gave
// up (an AbortSignal: the client went away). A waiter that times out or is
// abandoned leaves the queue at once, so it is never woken afterwards and
// never takes a turn nobody would give back; one that was woken keeps its
// turn even if its deadline passes before its continuation runs. Both
// copies this replaces got one of these wrong once: the engine raced its
// wake against its timer, and admission added its give-back listener after
// the client had gone (a slot held for good).

/** How a wait ended: woken with `value`, past its deadline, or given up by its caller. */
export type WaitOutcome<T> = { turn: T } | 'timeout' | 'abandoned';

interface Waiter<T> {
  settle(outcome: WaitOutcome<T>): void;
}

/** Waiters in arrival order; `wakeNext` hands the first its turn. */
export class WaitQueue<T = void> {
  private readonly waiters: Array<Waiter<T>> = [];

  /** Waiters still waiting. */
  get length(): number {
    return this.waiters.length;
  }

  /**
   * Waits for a turn, at most `timeoutMs` (none when it is Infinity or
   * omitted) and until `signal` aborts. An already aborted signal ends the
   * wait before it starts.
   */
  wait(timeoutMs = Infinity, signal?: AbortSignal): Promise<WaitOutcome<T>> {
    if (signal?.aborted) return Promise.resolve('abandoned');
    if (timeoutMs <= 0) return Promise.resolve('timeout');
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = (outcome: 'timeout' | 'abandoned'): void => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        waiter.settle(outcome);
      };
      const onAbort = (): void => leave('abandoned');
      const waiter: Waiter<T> = {
        settle: (outcome) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(outcome);
        },
      };
      this.waiters.push(waiter);
      if (Number.isFinite(timeoutMs)) timer = setTimeout(() => leave('timeout'), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Hands the first waiter its turn, with `value`; false when nobody waits. */
  wakeNext(...[value]: T extends void ? [value?: T] : [value: T]): boolean {
    const waiter = this.waiters.shift();
    if (!waiter) return false;
    waiter.settle({ turn: value as T });
    return true;
  }
}

// Admission to a database pool: at most `max` GraphQL requests hold a slot at
// once (fail fast instead of hanging when the pool is exhausted: a request
// that gets no slot within `timeoutMs` is answered 503 with Retry-After).
//
// Waiting is FAIR between clients, by construction: each client key (the
// tenant of a verified token, else the remote address) has its own queue,
// and a freed slot goes to the keys in turn (round robin), one request each.
// A request that starts waiting is therefore admitted after at most one
// request of every other key already waiting, however many those keys have
// queued: a FIFO queue let one client's 60,000 pipelined requests (issue 25)
// stand ahead of every other tenant's. A key holds at most
// `maxQueuedPerKey` waiting requests; more are answered 429 at once.
import type { NextFunction, Request, Response } from 'express';
import { WaitQueue } from '@sheratan/wait-queue';
import { requestState } from './request-state.ts';

/**
 * Requests one client key may have waiting for a slot at once (beyond them:
 * 429 ADMISSION_QUEUE_FULL). A client's sockets each bring one request at a
 * time (pipelining.ts), so this is reached only by a client with this many
 * requests in flight beyond the pool's size.
 */
export const MAX_QUEUED_PER_CLIENT = 256;

/** What waiting gave: a slot (with how many other keys' requests were admitted while this one waited), or why not. */
export type AdmissionResult = { release: () => void; admittedBefore: number } | { refused: 'timeout' } | { refused: 'queue-full' } | { refused: 'abandoned' };

export class Admission {
  private inUse = 0;
  /** Requests admitted so far, all keys: a waiter's count of those admitted before it is the difference. */
  private admitted = 0;
  /**
   * Per key, its waiting requests in arrival order (each woken with the count
   * of admitted requests at its admission); a key is here only while it has some.
   */
  private readonly queues = new Map<string, WaitQueue<number>>();
  /** The keys with waiting requests, in the order they are served; a served key goes to the back. */
  private readonly turns: string[] = [];
  readonly max: number;
  readonly timeoutMs: number;
  readonly maxQueuedPerKey: number;

  constructor(max: number, timeoutMs: number, maxQueuedPerKey = MAX_QUEUED_PER_CLIENT) {
    this.max = max;
    this.timeoutMs = timeoutMs;
    this.maxQueuedPerKey = maxQueuedPerKey;
  }

  get waiting(): number {
    let n = 0;
    for (const queue of this.queues.values()) n += queue.length;
    return n;
  }

  get active(): number {
    return this.inUse;
  }

  /** Requests of `key` waiting now. */
  waitingFor(key: string): number {
    return this.queues.get(key)?.length ?? 0;
  }

  /**
   * Resolves with a slot's release function, or with the reason there is
   * none. A waiter whose `abandoned` signal fires (its client went away)
   * leaves the queue at once: it neither takes a slot nobody would give back
   * nor stands in its key's turn.
   */
  async acquire(key: string, abandoned?: AbortSignal): Promise<AdmissionResult> {
    if (abandoned?.aborted) return { refused: 'abandoned' };
    if (this.inUse < this.max && this.turns.length === 0) {
      const at = this.take();
      return this.slot(at, at);
    }
    let queue = this.queues.get(key);
    if (queue && queue.length >= this.maxQueuedPerKey) return { refused: 'queue-full' };
    if (!queue) {
      queue = new WaitQueue<number>();
      this.queues.set(key, queue);
      this.turns.push(key);
    }
    const since = this.admitted;
    const outcome = await queue.wait(this.timeoutMs, abandoned);
    // Woken: the slot was counted as this request's when it was handed over (release), so nothing took it meanwhile.
    if (typeof outcome === 'object') return this.slot(outcome.turn, since);
    // Gone from its key's queue already (WaitQueue); a key left with nobody waiting leaves the turns.
    if (queue.length === 0 && this.queues.get(key) === queue) this.dropKey(key);
    return { refused: outcome };
  }

  /** Counts a slot as taken; returns the number of requests admitted before it. */
  private take(): number {
    this.inUse++;
    return this.admitted++;
  }

  /** A taken slot (admitted as number `at`) of a request that started waiting when `since` were admitted. */
  private slot(at: number, since: number): AdmissionResult {
    let released = false;
    return {
      admittedBefore: at - since,
      release: () => {
        if (released) return;
        released = true;
        this.inUse--;
        this.handOver();
      },
    };
  }

  /** A freed slot goes to the first waiter of the key whose turn it is; that key goes to the back if it has more. */
  private handOver(): void {
    while (this.inUse < this.max) {
      const key = this.turns.shift();
      if (key === undefined) return;
      const queue = this.queues.get(key)!;
      if (queue.length > 0 && queue.wakeNext(this.admitted)) {
        this.take();
        if (queue.length > 0) this.turns.push(key);
        else this.queues.delete(key);
        return;
      }
      // Its last waiter has just left (timeout or abandoned), before its own clean-up ran.
      this.queues.delete(key);
    }
  }

  private dropKey(key: string): void {
    this.queues.delete(key);
    const at = this.turns.indexOf(key);
    if (at >= 0) this.turns.splice(at, 1);
  }
}

/**
 * The key a request waits under: its verified token's tenant, else its remote
 * address (behind a reverse proxy, every anonymous request shares the proxy's
 * address; anonymous requests can only read the schema).
 */
export function admissionKey(req: Request): string {
  const claims = requestState(req)?.claims;
  return claims ? `tenant:${claims.tenant}` : `address:${req.socket.remoteAddress ?? ''}`;
}

/** Holds a slot for the whole request, or answers 429 (its key's queue is full) or 503 (no slot in time), with Retry-After. */
export function admissionMiddleware(admission: Admission) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const key = admissionKey(req);
    // Watched from before the wait: a client that goes away while waiting leaves the queue, and one that goes
    // away as its slot is granted gives it back at once ('close' has been emitted by then, and a listener
    // added after it would never run: the slot would stay taken for good).
    const gone = new AbortController();
    const slot: { release?: () => void } = {};
    res.once('close', () => {
      gone.abort();
      slot.release?.();
    });
    const result = await admission.acquire(key, gone.signal);
    if ('refused' in result && result.refused === 'abandoned') return;
    if ('refused' in result) {
      const [status, code, message] =
        result.refused === 'queue-full'
          ? ([
              429,
              'ADMISSION_QUEUE_FULL',
              `this client already has ${admission.maxQueuedPerKey} requests waiting for a database connection ` +
                `(the limit per ${key.startsWith('tenant:') ? 'tenant' : 'client address'}); retry once some are answered`,
            ] as const)
          : ([
              503,
              'POOL_EXHAUSTED',
              `the database connection pool is exhausted: all ${admission.max} connections (DB_POOL_SIZE + DB_MAX_OVERFLOW) ` +
                `stayed busy for ${admission.timeoutMs} ms (DB_POOL_TIMEOUT_MS); retry shortly`,
            ] as const);
      res
        .status(status)
        .set('Retry-After', '1')
        .json({ errors: [{ message, extensions: { code } }] });
      return;
    }
    const state = requestState(req);
    if (state) state.admission = { key, admittedBefore: result.admittedBefore };
    if (gone.signal.aborted) return result.release();
    slot.release = result.release;
    next();
  };
}

// Fail fast instead of hanging when the database pool is exhausted (the seed
// guide's "Connection pool exhausted"): at most `max` GraphQL requests hold a
// slot at once; a request that cannot get one within `timeoutMs` is answered
// 503 with Retry-After.
import type { NextFunction, Request, Response } from 'express';

export class Admission {
  private inUse = 0;
  private readonly queue: Array<() => void> = [];
  readonly max: number;
  readonly timeoutMs: number;

  constructor(max: number, timeoutMs: number) {
    this.max = max;
    this.timeoutMs = timeoutMs;
  }

  get waiting(): number {
    return this.queue.length;
  }

  get active(): number {
    return this.inUse;
  }

  /** Resolves with a release function, or with null after the timeout. */
  acquire(): Promise<(() => void) | null> {
    const grant = (): (() => void) => {
      this.inUse++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        this.inUse--;
        this.queue.shift()?.();
      };
    };
    if (this.inUse < this.max) return Promise.resolve(grant());
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(grant());
      };
      const timer = setTimeout(() => {
        const i = this.queue.indexOf(wake);
        if (i >= 0) this.queue.splice(i, 1);
        resolve(null);
      }, this.timeoutMs);
      this.queue.push(wake);
    });
  }
}

/** Holds a slot for the whole request, or answers 503 with Retry-After when none frees up in time. */
export function admissionMiddleware(admission: Admission) {
  return async (_req: Request, res: Response, next: NextFunction): Promise<void> => {
    const release = await admission.acquire();
    if (!release) {
      res
        .status(503)
        .set('Retry-After', '1')
        .json({
          errors: [
            {
              message:
                `the database connection pool is exhausted: all ${admission.max} connections (DB_POOL_SIZE + DB_MAX_OVERFLOW) ` +
                `stayed busy for ${admission.timeoutMs} ms (DB_POOL_TIMEOUT_MS); retry shortly`,
              extensions: { code: 'POOL_EXHAUSTED' },
            },
          ],
        });
      return;
    }
    res.once('close', release);
    next();
  };
}

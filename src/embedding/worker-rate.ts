// EMBEDDING_TENANT_RATE: how many texts per second one tenant may send to the
// embedding provider from this process (a token bucket per tenant holding at
// most one second's worth). The workers wait for their tenant's tokens and
// meanwhile serve other tenants; ingestDocument above the rate leaves the
// document PENDING for the workers; a search by text above it is refused with
// EMBEDDING_RATE_LIMITED. Each gateway and `npm run worker` process has its
// own buckets: a tenant's total is the rate times the processes.
export class TenantRate {
  readonly perSecond: number;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /** `perSecond` 0: unlimited. */
  constructor(perSecond: number) {
    this.perSecond = perSecond;
  }

  private bucket(tenant: string, now: number): { tokens: number; at: number } {
    let b = this.buckets.get(tenant);
    if (!b) {
      b = { tokens: this.perSecond, at: now };
      this.buckets.set(tenant, b);
    }
    b.tokens = Math.min(this.perSecond, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    // Buckets of tenants gone quiet are full again: forget them.
    if (this.buckets.size > 10_000) for (const [t, x] of this.buckets) if (x.tokens >= this.perSecond && t !== tenant) this.buckets.delete(t);
    return b;
  }

  /** Takes `n` tokens if the tenant has them now. */
  tryTake(tenant: string, n: number, now = Date.now()): boolean {
    if (this.perSecond === 0) return true;
    const b = this.bucket(tenant, now);
    // A batch larger than a second's worth may go once the bucket is full.
    if (b.tokens >= Math.min(n, this.perSecond)) {
      b.tokens -= n;
      return true;
    }
    return false;
  }

  /** How long until `n` tokens are there (0: now). */
  waitMs(tenant: string, n: number, now = Date.now()): number {
    if (this.perSecond === 0) return 0;
    const b = this.bucket(tenant, now);
    const missing = Math.min(n, this.perSecond) - b.tokens;
    return missing <= 0 ? 0 : Math.ceil((missing / this.perSecond) * 1000);
  }

  /** Takes `n` tokens, waiting for them. */
  async take(tenant: string, n: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (this.tryTake(tenant, n)) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(10, this.waitMs(tenant, n)));
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (signal?.aborted) return;
    }
  }
}

/**
 * The provider's own word on when to call again: after an answer with
 * Retry-After (a 429), every caller in this process holds off until then. The
 * workers wait for it; a request (an ingest, a search by text) does not wait:
 * it hears EMBEDDING_RATE_LIMITED with the time left.
 */
export class ProviderPause {
  private until = 0;

  /** Remembers a failure's Retry-After (an error with `retryAfterMs`). */
  note(err: unknown, now = Date.now()): void {
    const after = (err as { retryAfterMs?: unknown } | null)?.retryAfterMs;
    if (typeof after === 'number' && after > 0) this.until = Math.max(this.until, now + after);
  }

  /** Milliseconds left before the provider may be called (0: now). */
  remainingMs(now = Date.now()): number {
    return Math.max(0, this.until - now);
  }
}

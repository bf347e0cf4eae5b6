// The query embeddings of one process, bounded: the same search text twice
// costs one provider call. Least recently used entries go first once
// `maxEntries` are held (0: nothing is kept). Concurrent misses for one text
// share one call; a failed call is not kept, so the next search tries again.
// Entries are kept per scope (the tenant): a text one tenant searched is
// never served to another, whose search would otherwise answer without a
// provider call and tell it, by its time, what the first tenant searched.
import type { EmbeddingProvider } from './provider.ts';

export class QueryEmbeddingCache {
  /** Insertion order is recency order: a hit moves its entry to the end. */
  private readonly entries = new Map<string, number[]>();
  private readonly inFlight = new Map<string, Promise<number[]>>();
  hits = 0;
  misses = 0;

  readonly provider: Pick<EmbeddingProvider, 'embed' | 'model' | 'dimension'>;
  readonly maxEntries: number;

  // Plain fields, not parameter properties: Node runs this file by stripping types (erasableSyntaxOnly).
  constructor(provider: Pick<EmbeddingProvider, 'embed' | 'model' | 'dimension'>, maxEntries: number) {
    this.provider = provider;
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The text's vector, from the cache or the provider, within `scope` (a
   * tenant: entries of one scope never answer another's). Callers must not
   * change the array they get.
   */
  async embed(text: string, scope = ''): Promise<number[]> {
    // Tenants carry no control characters (src/http/token-verification.ts): NUL cannot join two scopes' keys into one.
    const key = `${scope}\u0000${text}`;
    const cached = this.entries.get(key);
    if (cached) {
      this.hits++;
      this.entries.delete(key);
      this.entries.set(key, cached);
      return cached;
    }
    const pending = this.inFlight.get(key);
    if (pending) {
      this.hits++;
      return pending;
    }
    this.misses++;
    const call = this.provider.embed([text]).then(([vector]) => {
      if (this.maxEntries > 0) {
        this.entries.set(key, vector!);
        if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      }
      return vector!;
    });
    this.inFlight.set(key, call);
    try {
      return await call;
    } finally {
      this.inFlight.delete(key);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}

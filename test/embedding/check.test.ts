// The provider check of start-up and `npm run doctor`: the provider answers,
// and with as many numbers as the column holds; else one line naming both
// numbers (or the provider's error) and the way out. Real model, real HTTP
// server process, real databases for the gateway. Doctor's line for it:
// doctor-checks.test.ts, "embedding provider: …".
import { parseConfig } from '../../src/config/config.ts';
import { checkEmbeddingProvider, ProviderCheckError } from '../../src/embedding/check.ts';
import { LocalEmbeddingProvider } from '../../src/embedding/local.ts';
import { OpenAiEmbeddingProvider } from '../../src/embedding/openai.ts';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';

let server: OpenAiServer;
let local: LocalEmbeddingProvider;
beforeAll(async () => {
  server = await startOpenAiServer();
  local = new LocalEmbeddingProvider();
});
afterAll(async () => {
  await Promise.all([server?.stop(), local?.close()]);
});
beforeEach(() => server.setFault({}));

const openai = (dimension: number, options: { dimensions?: number; timeoutMs?: number } = {}): OpenAiEmbeddingProvider =>
  new OpenAiEmbeddingProvider({ baseUrl: server.url, model: 'text-embedding-3-small', dimension, maxRetries: 0, ...options });

const refusal = async (p: Promise<unknown>): Promise<ProviderCheckError> => {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderCheckError);
  expect((err as Error).message).not.toContain('\n');
  return err as ProviderCheckError;
};

test('none: nothing to call, clients bring vectors of the column’s size', async () => {
  expect(await checkEmbeddingProvider(null, 384)).toMatch(/EMBEDDING_PROVIDER=none: clients bring their own vectors of 384 numbers/);
});

test('local against vector(512) passes after one real call', async () => {
  expect(await checkEmbeddingProvider(local, 512)).toMatch(/^local:use-lite-512 answers 512 numbers = vector\(512\)/);
});

test('local against vector(384) is refused naming both numbers and the ways out', async () => {
  const err = await refusal(checkEmbeddingProvider(local, 384));
  expect(err.code).toBe('EMBEDDING_DIMENSION_MISMATCH');
  expect(err.detail).toBe('EMBEDDING_PROVIDER=local answers 512 numbers (use-lite-512) but sheratan.document_chunks.embedding is vector(384)');
  expect(err.fix).toMatch(/set EMBEDDING_PROVIDER=none.*npm run embeddings:migrate -- --dimension 512 --name local:use-lite-512/);
});

test('openai: a model that answers another dimension than configured is refused with both numbers', async () => {
  expect(await checkEmbeddingProvider(openai(256, { dimensions: 256 }), 256)).toMatch(/answers 256 numbers = vector\(256\)/);
  const err = await refusal(checkEmbeddingProvider(openai(384), 384)); // the model answers 512 when not asked for fewer
  expect(err.code).toBe('EMBEDDING_DIMENSION_MISMATCH');
  expect(err.detail).toMatch(/answered 512 numbers for text 0 but the column holds 384/);
  await server.setFault({ wrongDimension: true });
  expect((await refusal(checkEmbeddingProvider(openai(512), 512))).detail).toMatch(/answered 511 numbers .* holds 512/);
});

test('openai: down, broken or silent is refused with what to check', async () => {
  await server.setFault({ serverError: { count: 5 } });
  let err = await refusal(checkEmbeddingProvider(openai(512), 512));
  expect(err).toMatchObject({ code: 'EMBEDDING_PROVIDER_UNAVAILABLE' });
  expect(err.detail).toMatch(/answered HTTP 500/);
  expect(err.fix).toMatch(/EMBEDDING_BASE_URL, EMBEDDING_MODEL and EMBEDDING_API_KEY/);
  await server.setFault({ nan: true });
  expect((await refusal(checkEmbeddingProvider(openai(512), 512))).code).toBe('EMBEDDING_BAD_RESPONSE');
  await server.setFault({ hang: true });
  err = await refusal(checkEmbeddingProvider(openai(512), 512, { timeoutMs: 300 }));
  expect(err.code).toBe('EMBEDDING_PROVIDER_TIMEOUT');
});

test('npm start’s gateway: a provider answering another dimension refuses to start; one not answering only warns and text waits', async () => {
  const { startGateway } = await import('../../src/http/start.ts');
  const { createTestDatabase, migrateTestDatabase, TEST_ENGINE_ENV } = await import('../support/backend.ts');
  const database = await createTestDatabase();
  const env = {
    ...database.env,
    ...TEST_ENGINE_ENV,
    LOG_LEVEL: 'silent',
    EMBEDDING_PROVIDER: 'openai',
    EMBEDDING_BASE_URL: server.url,
    EMBEDDING_MODEL: 'm',
    EMBEDDING_MAX_RETRIES: '0',
    EMBEDDING_WORKER_CONCURRENCY: '0',
  };
  try {
    // The column is vector(384); the test server answers 384 when asked for `dimensions`, 511 with the fault.
    const config = parseConfig({ ...env, VECTOR_DIMENSION: '384', EMBEDDING_DIMENSIONS: '384' });
    await migrateTestDatabase(config);
    await server.setFault({ wrongDimension: true });
    const refused = await startGateway(config, { port: 0 }).then(
      async (g) => (await g.stop(), null),
      (e: Error) => e,
    );
    expect(refused?.message).toMatch(/answered 383 numbers .* holds 384/);
    expect(refused?.message).not.toContain('\n');
    await server.setFault({ serverError: { count: 1000, status: 503 } });
    const running = await startGateway(config, { port: 0 });
    try {
      expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
    } finally {
      await running.stop();
    }
  } finally {
    await server.setFault({});
    await database.drop();
  }
});

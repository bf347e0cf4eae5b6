// The embedding configuration: defaults that let `npm start` search by text,
// VECTOR_DIMENSION following the provider, and one clear line for each
// conflict.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_VARIABLES, parseConfig } from '../../src/config/config.ts';
import { projectRoot } from '../../src/config/paths.ts';

test('defaults: the local model, 512 numbers, and the chunker’s and cache’s sizes', () => {
  expect(parseConfig({})).toMatchObject({
    embeddingProvider: 'local',
    embeddingModel: 'use-lite-512',
    vectorDimension: 512,
    embeddingBaseUrl: undefined,
    embeddingApiKey: undefined,
    embeddingDimensions: undefined,
    embeddingBatchSize: 16,
    embeddingTimeoutMs: 30_000,
    embeddingMaxRetries: 4,
    chunkMaxChars: 1000,
    chunkOverlapChars: 100,
    queryCacheSize: 1000,
  });
  expect(parseConfig({ EMBEDDING_PROVIDER: 'local', VECTOR_DIMENSION: '512', EMBEDDING_MODEL: 'use-lite-512' }).vectorDimension).toBe(512);
});

test('none keeps the clients’ 384 (or any VECTOR_DIMENSION); openai takes VECTOR_DIMENSION or EMBEDDING_DIMENSIONS', () => {
  expect(parseConfig({ EMBEDDING_PROVIDER: 'none' })).toMatchObject({ embeddingProvider: 'none', vectorDimension: 384 });
  expect(parseConfig({ EMBEDDING_PROVIDER: 'none', VECTOR_DIMENSION: '768' }).vectorDimension).toBe(768);
  const openai = { EMBEDDING_PROVIDER: 'openai', EMBEDDING_BASE_URL: 'http://localhost:11434/v1/', EMBEDDING_MODEL: 'nomic-embed-text' };
  expect(parseConfig({ ...openai, VECTOR_DIMENSION: '768' })).toMatchObject({
    vectorDimension: 768,
    embeddingDimensions: undefined, // not sent: the model answers its own size
    embeddingBaseUrl: 'http://localhost:11434/v1',
    embeddingModel: 'nomic-embed-text',
    embeddingBatchSize: 64,
  });
  expect(parseConfig({ ...openai, EMBEDDING_DIMENSIONS: '256' })).toMatchObject({ vectorDimension: 256, embeddingDimensions: 256 });
  expect(parseConfig({ ...openai, EMBEDDING_DIMENSIONS: '256', VECTOR_DIMENSION: '256' })).toMatchObject({ vectorDimension: 256, embeddingDimensions: 256 });
});

const OPENAI = {
  EMBEDDING_PROVIDER: 'openai',
  EMBEDDING_BASE_URL: 'https://api.openai.com/v1',
  EMBEDDING_MODEL: 'text-embedding-3-small',
  VECTOR_DIMENSION: '1536',
};

test.each([
  [{ EMBEDDING_PROVIDER: 'cohere' }, 'EMBEDDING_PROVIDER must be one of local, openai, none, not "cohere"'],
  [
    { VECTOR_DIMENSION: '384' },
    "VECTOR_DIMENSION is 384 but EMBEDDING_PROVIDER=local's model answers 512 numbers; unset VECTOR_DIMENSION (or set 512), or set EMBEDDING_PROVIDER=none if clients bring their own 384-number vectors",
  ],
  [
    { EMBEDDING_DIMENSIONS: '256' },
    "EMBEDDING_DIMENSIONS is 256 but EMBEDDING_PROVIDER=local's model answers 512 numbers; unset EMBEDDING_DIMENSIONS (or set 512), or set EMBEDDING_PROVIDER=none if clients bring their own 256-number vectors",
  ],
  [
    { EMBEDDING_MODEL: 'text-embedding-3-small' },
    'EMBEDDING_MODEL is "text-embedding-3-small" but EMBEDDING_PROVIDER=local has one model, use-lite-512; unset EMBEDDING_MODEL, or set EMBEDDING_PROVIDER=openai with EMBEDDING_BASE_URL',
  ],
  [
    { ...OPENAI, EMBEDDING_BASE_URL: '' },
    'EMBEDDING_PROVIDER=openai needs EMBEDDING_BASE_URL (e.g. https://api.openai.com/v1, http://localhost:11434/v1 for Ollama)',
  ],
  [{ ...OPENAI, EMBEDDING_MODEL: '' }, 'EMBEDDING_PROVIDER=openai needs EMBEDDING_MODEL (e.g. text-embedding-3-small, nomic-embed-text)'],
  [
    { ...OPENAI, VECTOR_DIMENSION: '' },
    'EMBEDDING_PROVIDER=openai needs VECTOR_DIMENSION (or EMBEDDING_DIMENSIONS): the number of numbers text-embedding-3-small answers, e.g. 1536 for text-embedding-3-small',
  ],
  [
    { ...OPENAI, EMBEDDING_DIMENSIONS: '512' },
    "VECTOR_DIMENSION is 1536 but EMBEDDING_DIMENSIONS is 512; the provider's vectors go into the column, so set both to the same number (or unset one)",
  ],
  [{ ...OPENAI, EMBEDDING_BASE_URL: 'api.openai.com' }, 'EMBEDDING_BASE_URL must be an http:// or https:// URL such as https://api.openai.com/v1'],
  [{ ...OPENAI, EMBEDDING_BASE_URL: 'ftp://host/v1' }, 'EMBEDDING_BASE_URL must be an http:// or https:// URL, not a ftp:// URL'],
  [
    { ...OPENAI, EMBEDDING_BASE_URL: 'https://user:sk-secret@host/v1?key=sk-secret' },
    'EMBEDDING_BASE_URL must not carry credentials or a query string (https://host/v1); put the key in EMBEDDING_API_KEY',
  ],
  [{ ...OPENAI, EMBEDDING_BATCH_SIZE: '0' }, 'EMBEDDING_BATCH_SIZE must be an integer between 1 and 2048, not 0'],
  [{ ...OPENAI, EMBEDDING_TIMEOUT_MS: 'soon' }, 'EMBEDDING_TIMEOUT_MS must be an integer between 100 and 600000, not "soon"'],
  [{ ...OPENAI, EMBEDDING_MAX_RETRIES: '-1' }, 'EMBEDDING_MAX_RETRIES must be an integer between 0 and 20, not -1'],
  [{ CHUNK_MAX_CHARS: '10' }, 'CHUNK_MAX_CHARS must be an integer between 50 and 100000, not 10'],
  [
    { CHUNK_MAX_CHARS: '200', CHUNK_OVERLAP_CHARS: '150' },
    'CHUNK_OVERLAP_CHARS is 150 but must be at most half of CHUNK_MAX_CHARS (200), so every chunk brings new text',
  ],
  [{ QUERY_CACHE_SIZE: 'lots' }, 'QUERY_CACHE_SIZE must be an integer between 0 and 1000000, not "lots"'],
])('%p is refused with one line', (env, message) => {
  let thrown: Error | undefined;
  try {
    parseConfig({ EMBEDDING_API_KEY: 'sk-never-in-a-message', ...env });
  } catch (err) {
    thrown = err as Error;
  }
  expect(thrown?.message).toBe(message);
  expect(thrown!.message).not.toContain('sk-');
});

test('every embedding variable is a known configuration variable, in the README’s configuration table', () => {
  const table = readFileSync(path.join(projectRoot, 'README.md'), 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('| `'));
  for (const name of [
    'EMBEDDING_PROVIDER',
    'EMBEDDING_MODEL',
    'EMBEDDING_BASE_URL',
    'EMBEDDING_API_KEY',
    'EMBEDDING_DIMENSIONS',
    'EMBEDDING_BATCH_SIZE',
    'EMBEDDING_TIMEOUT_MS',
    'EMBEDDING_MAX_RETRIES',
    'CHUNK_MAX_CHARS',
    'CHUNK_OVERLAP_CHARS',
    'QUERY_CACHE_SIZE',
  ]) {
    expect(CONFIG_VARIABLES).toContain(name);
    expect(table.some((row) => row.split('|')[1]!.includes(`\`${name}\``))).toBe(true);
  }
});

test('npm start with EMBEDDING_PROVIDER=openai and no base URL exits 1 with one line, before it opens anything', () => {
  const result = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'start'], {
    env: {
      ...process.env,
      EMBEDDING_PROVIDER: 'openai',
      EMBEDDING_BASE_URL: '',
      EMBEDDING_MODEL: 'm',
      EMBEDDING_API_KEY: 'sk-never-printed',
      SHERATAN_DATA_DIR: '/nonexistent-never-created',
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(result.status).toBe(1);
  expect(result.stderr.trim()).toBe(
    'sheratan: EMBEDDING_PROVIDER=openai needs EMBEDDING_BASE_URL (e.g. https://api.openai.com/v1, http://localhost:11434/v1 for Ollama)',
  );
  expect(result.stderr + result.stdout).not.toContain('sk-never-printed');
});

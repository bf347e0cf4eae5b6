// The gateway refuses to start when VECTOR_DIMENSION disagrees with the column.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import { startGateway } from '../../src/http/start.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { DimensionMismatchError } from '../../src/database/vector-column.ts';
import { createTestDatabase, migrateTestDatabase, TEST_ENGINE_ENV, type TestDatabase } from '../support/backend.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

test('VECTOR_DIMENSION=768 against a vector(384) column stops with both numbers and the fix', async () => {
  const config = parseConfig({ ...db.env, ...TEST_ENGINE_ENV, LOG_LEVEL: 'silent' });
  await migrateTestDatabase(config);
  const first = await startGateway(config, { port: 0 });
  await first.stop();
  const message =
    'VECTOR_DIMENSION is 768 but sheratan.document_chunks.embedding is vector(384); ' +
    "set VECTOR_DIMENSION=384 (after an embedding model switch, the new model's dimension), " +
    'or change the model with npm run embeddings:migrate -- --dimension 768 --name <model>';
  await expect(startGateway(parseConfig({ ...db.env, ...TEST_ENGINE_ENV, VECTOR_DIMENSION: '768', LOG_LEVEL: 'silent' }), { port: 0 })).rejects.toThrow(
    new DimensionMismatchError(message),
  );
  // …and `npm start` prints it as one line and exits 1.
  const cli = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'start'], {
    env: { ...process.env, ...db.env, VECTOR_DIMENSION: '768', PORT: '0', LOG_LEVEL: 'silent' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(cli.status).toBe(1);
  expect(cli.stderr.trim()).toBe(`sheratan: ${message}`);
});

// Configuration: defaults, validation, and the one-line failure at start.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import { projectRoot } from '../../src/config/paths.ts';

test('defaults follow the spec', () => {
  const c = parseConfig({});
  expect(c).toMatchObject({
    databaseUrl: undefined,
    vectorDimension: 384,
    textSearchConfig: 'english',
    poolSize: 10,
    poolMaxOverflow: 20,
    poolTimeoutMs: 5000,
    port: 5678,
    host: '127.0.0.1',
    statementTimeoutMs: 10000,
    maxSearchResults: 100,
    maxQueryDepth: 12,
    maxBodyBytes: 16 * 1024 * 1024,
    searchEf: 40,
    ivfflatProbes: undefined,
    introspection: true,
  });
  expect(c.dataDir).toBe(path.resolve('.sheratan'));
});

test.each([
  [{ VECTOR_DIMENSION: 'abc' }, /^VECTOR_DIMENSION must be an integer between 1 and 4000, not "abc"$/],
  [{ TEXT_SEARCH_CONFIG: "english'; drop table x; --" }, /^TEXT_SEARCH_CONFIG must be the name of a text search configuration/],
  [{ PORT: '70000' }, /^PORT must be an integer between 0 and 65535, not 70000$/],
  [{ DB_POOL_SIZE: '0' }, /^DB_POOL_SIZE must be an integer/],
  [{ DATABASE_URL: 'mysql://x@y/z' }, /^DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ connection string/],
  [{ DATABASE_URL: 'not a url' }, /^DATABASE_URL must be a postgres:\/\/ connection string/],
  [{ JWT_SECRET: 'short' }, /^JWT_SECRET must be at least 32 characters/],
  [{ GRAPHQL_INTROSPECTION: 'maybe' }, /^GRAPHQL_INTROSPECTION must be true or false/],
  [{ NODE_ENV: 'staging' }, /^NODE_ENV must be one of development, production, test/],
  [{ AUTH_DATABASE_URL: 'postgres://a@b/c' }, /^AUTH_DATABASE_URL is set but DATABASE_URL is not/],
])('%p is rejected naming the variable', (env, message) => {
  expect(() => parseConfig(env)).toThrow(message);
});

test('production turns introspection off unless GRAPHQL_INTROSPECTION=true', () => {
  expect(parseConfig({ NODE_ENV: 'production' }).introspection).toBe(false);
  expect(parseConfig({ NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true' }).introspection).toBe(true);
});

test('npm start with an invalid value exits 1 with one line naming the variable', () => {
  const result = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'start'], {
    env: { ...process.env, VECTOR_DIMENSION: 'lots', SHERATAN_DATA_DIR: '/nonexistent-never-created' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(result.status).toBe(1);
  expect(result.stderr.trim()).toBe('sheratan: VECTOR_DIMENSION must be an integer between 1 and 4000, not "lots"');
});

// Configuration: defaults, validation, and the one-line failure at start.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { assertReadyToServe, loadConfig, parseConfig } from '../../src/config/config.ts';
import { envTextProblem } from '../../src/config/env-file.ts';
import { projectRoot } from '../../src/config/paths.ts';

test('defaults follow the spec', () => {
  const c = parseConfig({});
  expect(c).toMatchObject({
    databaseUrl: undefined,
    // EMBEDDING_PROVIDER=local by default: the shipped model's 512 numbers (none keeps 384).
    vectorDimension: 512,
    embeddingProvider: 'local',
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
  [{ JWT_MAX_LIFETIME: '10' }, /^JWT_MAX_LIFETIME must be an integer between 60 and 31622400, not 10$/],
  [{ JWT_CLOCK_SKEW: '1e3' }, /^JWT_CLOCK_SKEW must be an integer between 0 and 3600, not "1e3"$/],
  [{ JWT_MAX_AGE: '172800' }, /^JWT_MAX_AGE is 172800 but JWT_MAX_LIFETIME is 86400: a token without exp would live longer than the maximum lifetime/],
  [{ METRICS_PUBLIC: 'perhaps' }, /^METRICS_PUBLIC must be true or false/],
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

test('tokens live at most a day by default, with a minute of clock skew', () => {
  expect(parseConfig({})).toMatchObject({ jwtMaxLifetimeS: 86400, jwtClockSkewS: 60, jwtMaxAgeS: undefined, metricsPublic: false });
  expect(parseConfig({ JWT_MAX_LIFETIME: '604800', JWT_MAX_AGE: '604800' })).toMatchObject({ jwtMaxLifetimeS: 604800, jwtMaxAgeS: 604800 });
});

describe('a production gateway refuses to start without its secrets', () => {
  const SECRET = 'x'.repeat(32);
  test.each([
    [{ NODE_ENV: 'production' }, /^JWT_SECRET must be set in production/],
    [{ NODE_ENV: 'production', DATABASE_URL: 'postgres://a@b/c' }, /^JWT_SECRET must be set in production/],
    [{ NODE_ENV: 'production', JWT_SECRET: SECRET }, /^METRICS_TOKEN must be set in production .*METRICS_PUBLIC=true/],
    [{ NODE_ENV: 'production', JWT_SECRET: SECRET, METRICS_PUBLIC: 'false' }, /^METRICS_TOKEN must be set in production/],
  ])('%p', (env, message) => {
    expect(() => assertReadyToServe(parseConfig(env))).toThrow(message);
  });
  test.each([
    [{}],
    [{ NODE_ENV: 'test' }],
    [{ NODE_ENV: 'production', JWT_SECRET: SECRET, METRICS_TOKEN: 'scrape' }],
    [{ NODE_ENV: 'production', JWT_SECRET: SECRET, METRICS_PUBLIC: 'true' }],
  ])('but starts with %p', (env) => {
    expect(() => assertReadyToServe(parseConfig(env))).not.toThrow();
  });

  test('npm start in production without JWT_SECRET exits 1 with one line naming it, before it opens anything', () => {
    const dataDir = path.join(os.tmpdir(), `sheratan-never-created-${process.pid}`);
    const result = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'start'], {
      env: { ...process.env, NODE_ENV: 'production', JWT_SECRET: '', METRICS_TOKEN: 'scrape', SHERATAN_DATA_DIR: dataDir, DATABASE_URL: '' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^sheratan: JWT_SECRET must be set in production \(NODE_ENV=production\)/)]);
    expect(existsSync(dataDir)).toBe(false);
  });
});

// .env files as a class: generated files of valid lines (KEY=value, spaces
// around =, export, quoted values spanning lines, comments, blanks) read
// cleanly and mean what dotenv reads; one line of another shape placed
// anywhere is reported by its number, never by its text.
describe('.env lines that are not KEY=value are an error naming the line', () => {
  const random = (seed: number) => () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const GOOD: Array<(i: number) => { lines: string[]; key?: string; value?: string }> = [
    (i) => ({ lines: [`KEY_${i}=value-${i}`], key: `KEY_${i}`, value: `value-${i}` }),
    (i) => ({ lines: [`KEY_${i} = spaced ${i}`], key: `KEY_${i}`, value: `spaced ${i}` }),
    (i) => ({ lines: [`export KEY_${i}=exported`], key: `KEY_${i}`, value: 'exported' }),
    (i) => ({ lines: [`KEY_${i}="quoted # not a comment"`], key: `KEY_${i}`, value: 'quoted # not a comment' }),
    (i) => ({ lines: [`KEY_${i}="first`, 'SECRET: inside a quoted value', `last"`], key: `KEY_${i}`, value: 'first\nSECRET: inside a quoted value\nlast' }),
    (i) => ({ lines: [`KEY_${i}='single`, `quoted'`], key: `KEY_${i}`, value: 'single\nquoted' }),
    (i) => ({ lines: [`KEY_${i}=`], key: `KEY_${i}`, value: '' }),
    (i) => ({ lines: [`KEY_${i}=with = inside # and a comment`], key: `KEY_${i}`, value: 'with = inside' }),
    () => ({ lines: ['# a comment: with a colon'] }),
    () => ({ lines: ['   '] }),
    () => ({ lines: [''] }),
  ];
  const BAD = [
    'JWT_SECRET: 0123456789abcdef0123456789abcdef',
    'JWT_SECRET 0123456789abcdef',
    'just some words',
    'services:',
    '  - item',
    '"QUOTED"=1',
    '=value',
    'export',
    'KEY',
  ];

  test('generated valid files read cleanly, as dotenv reads them', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rnd = random(seed);
      const expected: Record<string, string> = {};
      const lines: string[] = [];
      for (let i = 0; i < 1 + Math.floor(rnd() * 12); i++) {
        const made = GOOD[Math.floor(rnd() * GOOD.length)]!(i);
        lines.push(...made.lines);
        if (made.key) expected[made.key] = made.value!;
      }
      const text = lines.join(rnd() < 0.2 ? '\r\n' : '\n');
      expect({ seed, problem: envTextProblem(text) }).toEqual({ seed, problem: undefined });
      expect(parseDotenv(text)).toEqual(expected);
    }
  });

  test('one bad line anywhere is reported by its number', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rnd = random(seed);
      // Whole entries (a quoted value may span lines): the bad line goes between two of them.
      const entries: string[][] = [];
      for (let i = 0; i < Math.floor(rnd() * 10); i++) entries.push(GOOD[Math.floor(rnd() * GOOD.length)]!(i).lines);
      const at = Math.floor(rnd() * (entries.length + 1));
      const bad = BAD[Math.floor(rnd() * BAD.length)]!;
      const line = entries.slice(0, at).flat().length + 1;
      entries.splice(at, 0, [bad]);
      const problem = envTextProblem(entries.flat().join('\n'));
      expect({ seed, bad, line: problem?.line }).toEqual({ seed, bad, line });
      expect(problem!.reason).not.toContain('0123456789abcdef');
    }
  });

  test('loadConfig names the file and the line, and npm start stops with it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-env-'));
    try {
      writeFileSync(path.join(dir, '.env'), '# settings\nPORT=5999\nJWT_SECRET: 0123456789abcdef0123456789abcdef\n');
      expect(() => loadConfig(dir)).toThrow(`${path.join(dir, '.env')} line 3: "JWT_SECRET:" is not KEY=value (write JWT_SECRET=…)`);
      const result = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'start'], {
        cwd: dir,
        env: { ...process.env, SHERATAN_DATA_DIR: path.join(dir, 'data') },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(result.status).toBe(1);
      expect(result.stderr.trim()).toBe(`sheratan: ${path.join(dir, '.env')} line 3: "JWT_SECRET:" is not KEY=value (write JWT_SECRET=…)`);
      expect(result.stderr).not.toContain('0123456789abcdef');
      expect(existsSync(path.join(dir, 'data'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

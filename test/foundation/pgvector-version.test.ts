// The pgvector versions the store runs on are the ones CI tests: 0.8 and
// newer (PostgreSQL 15 + pgvector 0.8 on the server, PGlite's own pgvector
// embedded). Older ones are refused, at start and by doctor, with the version
// named; there is no code path left for them.
import { MIN_PGVECTOR, pgvectorVersionProblem, versionAtLeast } from '../../src/database/vector-column.ts';
import { rng } from '../support/embeddings.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { runDoctor } from '../../src/operations/doctor.ts';

test('every version below 0.8 is refused naming it, every version from 0.8 on is accepted (generated versions)', () => {
  const next = rng(808);
  const versions = ['0.5.0', '0.7.4', '0.7.99', '0.8.0', '0.8.1', '0.9.0', '0.10.2', '1.0.0', '0.8', '0.7'];
  for (let i = 0; i < 200; i++) versions.push(`${Math.floor(next() * 2)}.${Math.floor(next() * 15)}.${Math.floor(next() * 10)}`);
  for (const version of versions) {
    const [major = 0, minor = 0] = version.split('.').map(Number);
    const supported = major > MIN_PGVECTOR.major || (major === MIN_PGVECTOR.major && minor >= MIN_PGVECTOR.minor);
    const problem = pgvectorVersionProblem(version);
    expect({ version, refused: problem !== null }).toEqual({ version, refused: !supported });
    if (problem) expect(problem).toContain(`pgvector ${version} is older than 0.8`);
    expect(versionAtLeast(version, 0, 8)).toBe(supported);
  }
});

describe('on this backend', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.stop());

  test('the installed pgvector is a supported one, and doctor says so', async () => {
    const owner = await h.owner();
    const version = (await owner.query("select extversion from pg_extension where extname = 'vector'")).rows[0].extversion as string;
    expect(pgvectorVersionProblem(version)).toBeNull();
    const checks = await runDoctor(h.config, h.gateway.db);
    expect(checks.find((c) => c.name === 'vector extension version')).toMatchObject({ status: 'ok', detail: expect.stringContaining(`pgvector ${version}`) });
  });
});

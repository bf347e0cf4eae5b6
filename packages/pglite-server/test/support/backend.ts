// The package's tests run in the repository's suite, which runs twice: on the
// embedded engine (TEST_DATABASE_URL unset) and on a PostgreSQL server
// (TEST_DATABASE_URL set). A test of the engine itself has nothing to test on
// the server run: there it is skipped, with its reason in its name, as the
// app's tests skip theirs (the repository's test/expected-skips.json names
// each such skip).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const backend: 'embedded' | 'server' = process.env.TEST_DATABASE_URL ? 'server' : 'embedded';

/** A new, empty directory for an engine's data; the test removes it. */
export function tempDataDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'sheratan-test-'));
}

/** `describe` on the embedded engine; on a server run, skipped with the reason in its name. */
export const describeEmbedded = (reason: string, name: string, fn: () => void): void =>
  backend === 'embedded' ? describe(name, fn) : describe.skip(`${name} [embedded only: ${reason}]`, fn);

// Doctor's SSL check (README, "Operations": doctor checks "SSL when
// `sslmode=require`"; DATABASE_URL takes "?sslmode=require for TLS"), run as
// the CLI process users run. Neither backend here offers TLS: the test server
// runs with `ssl = off`, and the embedded engine's listener answers a client's
// SSLRequest with 'N' (loopback only, README "Connecting a reporting tool").
// So a DATABASE_URL that asks for sslmode=require must not connect
// unencrypted, and doctor must say why with the fix: an ✗ SSL line naming
// sslmode=require and the server without SSL, exit code 1; --json the same.
// The same URL without sslmode connects (the control: sslmode is the cause).
// On the embedded engine doctor is pointed at the engine's listener through
// DATABASE_URL, as a server would be. (Doctor's ✓ SSL, an encrypted
// connection, is tested on a cluster with TLS: server-tls.test.ts.)
import { startHarness, type Harness } from '../support/harness.ts';
import { backend } from '../support/backend.ts';
import { runCliToEnd } from '../support/processes.ts';
import type { Check } from '../../src/operations/doctor.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
}, 180_000);
afterAll(() => h?.stop());

/** The owner's connection string to the database under test: DATABASE_URL on a server, the engine's listener embedded. */
const ownerUrl = (): string => (backend === 'server' ? h.cliEnv.DATABASE_URL! : h.gateway.db.engine!.url());
const withSslMode = (url: string, mode: string): string => {
  const u = new URL(url);
  u.searchParams.set('sslmode', mode);
  return u.toString();
};
const doctor = (databaseUrl: string, args: string[] = []) =>
  runCliToEnd(['doctor', ...args], { ...h.cliEnv, DATABASE_URL: databaseUrl, JWT_SECRET: h.config.jwtSecret! });

test('doctor with sslmode=require in DATABASE_URL against a database without SSL: ✗ SSL naming sslmode=require and the fix, exit 1 (also --json); without sslmode it connects', async () => {
  const plain = await doctor(ownerUrl());
  expect(plain.output).toMatch(/^✓ connection: connected with DATABASE_URL$/m);
  expect(plain.output).not.toMatch(/SSL/);

  const url = withSslMode(ownerUrl(), 'require');
  const text = await doctor(url);
  expect(text.code).toBe(1);
  expect(text.output).toMatch(/^✗ SSL: sslmode=require in DATABASE_URL, but the server does not support SSL connections/m);
  expect(text.output).toMatch(/^ {4}fix: enable SSL on the server \(ssl = on/m);
  expect(text.output).toMatch(/or remove sslmode=require from DATABASE_URL/);
  expect(text.output).not.toMatch(/^✓/m);

  const json = await doctor(url, ['--json']);
  expect(json.code).toBe(1);
  const report = JSON.parse(json.output.slice(json.output.indexOf('{'), json.output.lastIndexOf('}') + 1)) as { ok: boolean; checks: Check[] };
  expect(report.ok).toBe(false);
  expect(report.checks.find((c) => c.name === 'SSL')).toEqual({
    name: 'SSL',
    status: 'fail',
    detail: expect.stringMatching(/^sslmode=require in DATABASE_URL, but the server does not support SSL connections/),
    fix: expect.stringMatching(/^enable SSL on the server/),
  });
  expect(report.checks.filter((c) => c.status === 'ok')).toEqual([]);
}, 180_000);

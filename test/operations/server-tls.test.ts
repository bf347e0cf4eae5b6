// README's TLS to a server: DATABASE_URL takes an sslmode for TLS, and
// doctor's "SSL when sslmode=require" is ✓ SSL, "the connection is
// encrypted". The shared test server runs `ssl = off` (doctor-ssl.test.ts
// tests the refusal there), so this file has a cluster of its own
// (support/fault-cluster.ts) with `ssl = on` and a self-signed certificate
// (CN localhost) made for it. node-postgres 8 reads sslmode=require as
// verify-full: a self-signed certificate is refused unless the URL says
// `uselibpqcompat=true` (libpq's require: encrypted, not verified) or names
// the certificate with `sslrootcert=` (verified, host name included).
import { parseConfig } from '../../src/config/config.ts';
import { withPgClient } from '../../src/database/connect.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { backend, createServerTestDatabase, migrateTestDatabase, type TestDatabase } from '../support/backend.ts';
import { createFaultCluster, enableTls, clusterReason, clusterTest as clusterTestFor, type FaultCluster } from '../support/fault-cluster.ts';
import { postOnce, runCliToEnd, startGatewayProcess, type GatewayProcess } from '../support/processes.ts';
import type { Check } from '../../src/operations/doctor.ts';

const LONG = 240_000;
const SECRET = 'server-tls-test-secret-0123456789abcdef';

let cluster: FaultCluster | undefined;
let db: TestDatabase;
let certificate: string;
const gateways: GatewayProcess[] = [];
afterAll(async () => {
  for (const gw of gateways) if (gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
  try {
    await db?.drop().catch(() => undefined);
  } finally {
    cluster?.drop();
  }
}, LONG);

/** `url` with these query parameters (and host, when given). */
const withParams = (url: string, params: Record<string, string>, host?: string): string => {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  if (host) u.hostname = host;
  return u.toString();
};
const doctor = (databaseUrl: string, args: string[] = []) => runCliToEnd(['doctor', ...args], { ...db.env, DATABASE_URL: databaseUrl, JWT_SECRET: SECRET });
const sslLine = (output: string): string | undefined => output.split('\n').find((l) => /SSL/.test(l));

// Server only; on a server run skipped, saying why, only when no cluster can be made here.
const clusterTest = clusterTestFor('TLS to a server: the embedded engine offers none (doctor-ssl.test.ts)');

beforeAll(async () => {
  if (backend !== 'server' || clusterReason) return;
  cluster = await createFaultCluster();
  certificate = enableTls(cluster);
  db = await createServerTestDatabase(cluster.superuserUrl);
  await migrateTestDatabase(parseConfig({ ...db.env, LOG_LEVEL: 'silent' }));
}, LONG);

const COMPAT = { uselibpqcompat: 'true', sslmode: 'require' };

clusterTest(
  'doctor against a server with TLS (self-signed certificate): ✓ SSL, the connection is encrypted, with uselibpqcompat=true&sslmode=require and with sslmode=verify-full&sslrootcert= naming the certificate; plain sslmode=require refuses the certificate',
  async () => {
    const url = db.env.DATABASE_URL!;
    // The URL's sslmode is what encrypts: pg_stat_ssl for a session made with it, and without it.
    const encrypted = (u: string) => withPgClient(u, async (c) => (await c.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows[0]);
    expect(await encrypted(withParams(url, COMPAT))).toEqual({ ssl: true });
    expect(await encrypted(url)).toEqual({ ssl: false });

    const compat = await doctor(withParams(url, COMPAT));
    expect(compat.code).toBe(0);
    expect(sslLine(compat.output)).toBe('✓ SSL: the connection is encrypted');
    expect(compat.output).not.toMatch(/^[✗!]/m);
    expect(compat.output).not.toMatch(/SECURITY WARNING/);
    const json = await doctor(withParams(url, COMPAT), ['--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.output.slice(json.output.indexOf('{'), json.output.lastIndexOf('}') + 1)) as { ok: boolean; checks: Check[] };
    expect(report.ok).toBe(true);
    expect(report.checks.find((c) => c.name === 'SSL')).toEqual({ name: 'SSL', status: 'ok', detail: 'the connection is encrypted' });

    // Verified: the certificate as sslrootcert and the host name it names (CN localhost).
    const verified = await doctor(withParams(url, { sslmode: 'verify-full', sslrootcert: certificate }, 'localhost'));
    expect(verified.code).toBe(0);
    expect(sslLine(verified.output)).toBe('✓ SSL: the connection is encrypted');
    const otherHost = await doctor(withParams(url, { sslmode: 'verify-full', sslrootcert: certificate }, '127.0.0.1'));
    expect(otherHost.code).toBe(1);
    expect(otherHost.output).toMatch(/^✗ connection: Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.1 is not in the cert's list/m);

    // node-postgres 8 reads require as verify-full, says so, and refuses a certificate Node does not trust.
    const plain = await doctor(withParams(url, { sslmode: 'require' }));
    expect(plain.code).toBe(1);
    expect(plain.output).toMatch(/SECURITY WARNING: The SSL modes 'prefer', 'require', and 'verify-ca' are treated as aliases for 'verify-full'/);
    expect(plain.output).toMatch(/^✗ connection: self-signed certificate/m);
    expect(plain.output).not.toMatch(/^✓/m);
  },
  LONG,
);

clusterTest(
  'the gateway with uselibpqcompat=true&sslmode=require, or sslmode=verify-full&sslrootcert=, in DATABASE_URL and AUTH_DATABASE_URL serves /graphql over TLS: every session it holds is encrypted',
  async () => {
    const verifyFull = { sslmode: 'verify-full', sslrootcert: certificate };
    const ways: Array<[string, Record<string, string>, string | undefined]> = [
      ['libpq require', COMPAT, undefined],
      ['verified', verifyFull, 'localhost'],
    ];
    const token = signToken(SECRET, { role: 'sheratan_app', tenant: 'acme', sub: 'tls' });
    const titles: string[] = [];
    for (const [title, params, host] of ways) {
      const gw = await startGatewayProcess({
        ...db.env,
        JWT_SECRET: SECRET,
        LOG_LEVEL: 'warn',
        DATABASE_URL: withParams(db.env.DATABASE_URL!, params, host),
        AUTH_DATABASE_URL: withParams(db.env.AUTH_DATABASE_URL!, params, host),
      });
      gateways.push(gw);
      titles.push(title);
      expect(
        (
          await postOnce(
            gw.url,
            token,
            'mutation ($title: String!) { ingestDocument(input: { title: $title, chunks: [{ content: "one chunk" }] }) { document { title } } }',
            { title },
          )
        ).body,
      ).toEqual({ data: { ingestDocument: { document: { title } } } });
      expect((await postOnce(gw.url, token, '{ allDocuments(first: 10, orderBy: CREATED_AT_ASC) { nodes { title } } }')).body).toEqual({
        data: { allDocuments: { nodes: titles.map((t) => ({ title: t })) } },
      });
      expect(gw.output()).not.toMatch(/SECURITY WARNING/);
    }
    // Both gateways' pools (the authenticator's) are on the server now, and every session of the store is
    // encrypted (the owner's, auto-analyze every 5 s, may be there too).
    const sessions = await withPgClient(
      db.superuserUrl!,
      async (c) =>
        (
          await c.query(
            `select distinct a.usename, a.application_name, s.ssl from pg_stat_activity a join pg_stat_ssl s using (pid)
            where a.datname = current_database() and a.pid <> pg_backend_pid() order by 1, 2, 3`,
          )
        ).rows,
    );
    expect(sessions).toContainEqual({ usename: 'sheratan_authenticator', application_name: 'sheratan-gateway', ssl: true });
    expect(sessions.filter((row: { ssl: boolean }) => !row.ssl)).toEqual([]);
    for (const gw of gateways) {
      gw.child.kill('SIGTERM');
      expect((await gw.exited).code).toBe(0);
    }
  },
  LONG,
);

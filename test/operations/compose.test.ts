// docker-compose.yml cannot run here (no Docker engine), so its wiring is
// checked against the configuration schema instead.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { assertReadyToServe, CONFIG_VARIABLES, parseConfig } from '../../src/config/config.ts';
import { projectRoot } from '../../src/config/paths.ts';

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
}
const compose = parse(readFileSync(path.join(projectRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const { postgres, bootstrap, migrate, pgbouncer, gateway } = compose.services as Record<
  'postgres' | 'bootstrap' | 'migrate' | 'pgbouncer' | 'gateway',
  Service
>;

/** What docker compose would substitute, with a 32-character secret for required values. */
const interpolate = (value: string): string =>
  value.replace(/\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}/g, (_m, _name: string, fallback?: string) => fallback ?? 'x'.repeat(32));

test('PostgreSQL 15 with pgvector 0.8 (the versions CI tests), a health check and a volume', () => {
  expect(postgres.image).toBe('pgvector/pgvector:0.8.0-pg15');
  expect(postgres.healthcheck?.test.join(' ')).toMatch(/pg_isready/);
  const volume = postgres.volumes?.[0] ?? '';
  expect(volume).toMatch(/:\/var\/lib\/postgresql\/data$/);
  expect(Object.keys(compose.volumes)).toContain(volume.split(':')[0]);
});

test('the bootstrap runs once as the superuser, then migrate as the owner; the gateway waits for both to succeed', () => {
  expect(bootstrap.command).toEqual(['node', 'src/cli.ts', 'db:bootstrap']);
  expect(bootstrap.depends_on?.postgres?.condition).toBe('service_healthy');
  const root = new URL(interpolate(bootstrap.environment!.ROOT_DATABASE_URL!));
  expect(root.username).toBe(postgres.environment!.POSTGRES_USER);
  expect(migrate.command).toEqual(['node', 'src/cli.ts', 'db:migrate']);
  expect(migrate.depends_on?.bootstrap?.condition).toBe('service_completed_successfully');
  // From then on nothing holds the superuser's connection string, and the owner is another role.
  for (const service of [migrate, gateway]) {
    expect(service.environment?.ROOT_DATABASE_URL).toBeUndefined();
    expect(new URL(interpolate(service.environment!.DATABASE_URL!)).username).not.toBe(root.username);
  }
  expect(gateway.depends_on?.migrate?.condition).toBe('service_completed_successfully');
  expect(gateway.command).toEqual(['node', 'src/cli.ts', 'start']);
});

test.each([
  ['bootstrap', bootstrap],
  ['migrate', migrate],
  ['gateway', gateway],
])('%s sets only variables the configuration knows, and they validate', (_name, service) => {
  const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
  for (const key of Object.keys(env)) expect(CONFIG_VARIABLES).toContain(key);
  const config = parseConfig(env);
  expect(new URL(config.databaseUrl!).hostname).toBe('postgres');
  expect(config.production).toBe(true);
});

test('the gateway has what a production gateway needs to start (JWT_SECRET, METRICS_TOKEN)', () => {
  const env = Object.fromEntries(Object.entries(gateway.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
  expect(() => assertReadyToServe(parseConfig(env))).not.toThrow();
});

test('the published port is the port the gateway listens on, on all interfaces', () => {
  const env = gateway.environment ?? {};
  expect(env.HOST).toBe('0.0.0.0');
  const [, container] = (gateway.ports?.[0] ?? '').split(':');
  expect(container).toBe(String(env.PORT));
});

test("PgBouncer in transaction mode carries the API's requests, logged in as the gateway's authenticator; LISTEN and migrations stay direct", () => {
  const env = Object.fromEntries(Object.entries(gateway.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
  const bouncer = Object.fromEntries(Object.entries(pgbouncer.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
  expect(bouncer.POOL_MODE).toBe('transaction');
  const auth = new URL(env.AUTH_DATABASE_URL!);
  const pooler = new URL(env.POOLER_DATABASE_URL!);
  const upstream = new URL(bouncer.DATABASE_URL!);
  // The gateway reaches PgBouncer on its port, as the login PgBouncer itself uses against PostgreSQL.
  expect(pooler.hostname).toBe('pgbouncer');
  expect(pooler.port).toBe(String(bouncer.LISTEN_PORT));
  expect(upstream.hostname).toBe('postgres');
  for (const url of [pooler, upstream]) {
    expect([url.username, url.password, url.pathname]).toEqual([auth.username, auth.password, auth.pathname]);
  }
  expect(auth.hostname).toBe('postgres');
  expect(parseConfig(env).poolerDatabaseUrl).toBe(env.POOLER_DATABASE_URL);
  expect(gateway.depends_on?.pgbouncer).toBeDefined();
  expect(pgbouncer.depends_on?.bootstrap?.condition).toBe('service_completed_successfully');
});

test('the image runs Node 24', () => {
  expect(readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8')).toMatch(/^FROM node:24/m);
});

test("one setting names the roles: with DATABASE_ROLE_PREFIX set, the gateway logs in as that store's authenticator", () => {
  const withPrefix = (value: string): string => interpolate(value.replace(/\$\{DATABASE_ROLE_PREFIX:-[^}]*\}/g, 'store_b'));
  const env = Object.fromEntries(Object.entries(gateway.environment ?? {}).map(([k, v]) => [k, withPrefix(String(v))]));
  const config = parseConfig(env);
  expect(config.databaseRolePrefix).toBe('store_b');
  expect(new URL(config.authDatabaseUrl!).username).toBe('store_b_authenticator');
});

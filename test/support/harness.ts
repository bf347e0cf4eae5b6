// Shared test set-up: one embedded engine per test file (in its own temp data
// directory), migrated to head, with the gateway on an ephemeral port.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { parseConfig, type Config } from '../../src/config.ts';
import { startGateway, type RunningGateway } from '../../src/server.ts';
import { signToken, type ApiRole } from '../../src/auth.ts';

process.env.GRAPHILE_ENV ??= 'test';

export interface Harness {
  config: Config;
  gateway: RunningGateway;
  url: string;
  ownerUrl: string;
  token(role?: ApiRole, tenant?: string, sub?: string): string;
  graphql<T = Record<string, unknown>>(
    query: string,
    options?: { variables?: Record<string, unknown>; token?: string | null; path?: string },
  ): Promise<{ status: number; body: { data?: T; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> } }>;
  /** A client on the owner connection (superuser in embedded mode). */
  owner(): Promise<pg.Client>;
  stop(): Promise<void>;
}

export function tempDataDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'sheratan-test-'));
}

export async function startHarness(env: Record<string, string> = {}): Promise<Harness> {
  const dataDir = tempDataDir();
  const config = parseConfig({ SHERATAN_DATA_DIR: dataDir, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...env });
  const gateway = await startGateway(config, { port: 0 });
  const clients: pg.Client[] = [];
  const harness: Harness = {
    config: gateway.config,
    gateway,
    url: gateway.url,
    ownerUrl: gateway.db.ownerUrl,
    token: (role = 'sheratan_app', tenant = 'acme', sub = 'alice') =>
      signToken(gateway.config.jwtSecret!, { role, tenant, sub }),
    async graphql(query, options = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const token = options.token === undefined ? harness.token() : options.token;
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await fetch(`${gateway.url}${options.path ?? '/graphql'}`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ query, variables: options.variables }),
      });
      return { status: res.status, body: (await res.json()) as never };
    },
    async owner() {
      const client = new pg.Client(gateway.db.ownerUrl);
      client.on('error', () => undefined);
      await client.connect();
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await gateway.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return harness;
}

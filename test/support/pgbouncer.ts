// A PgBouncer of a test's own (Debian's package, scripts/install-postgres.sh)
// in transaction mode in front of the test server's database: its own
// configuration in a temporary directory, on a free port, logging to the
// test's output. As root it runs as `postgres` (PgBouncer refuses to run as
// root), so its directory is readable by that user.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './processes.ts';

export const PGBOUNCER = '/usr/sbin/pgbouncer';
export const havePgBouncer = existsSync(PGBOUNCER);

export interface PgBouncer {
  port: number;
  /** A connection string through the pooler for `user` (one of the logins it was given) to the database. */
  url(user: string): string;
  /** What it printed (its log). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts PgBouncer for the database `serverUrl` names, letting in `logins`
 * (name → password, also used for the server), with `poolSize` server
 * connections per login, on `onPort` (a free port if not given).
 */
export async function startPgBouncer(serverUrl: string, logins: Record<string, string>, poolSize: number, onPort?: number): Promise<PgBouncer> {
  const server = new URL(serverUrl);
  const database = decodeURIComponent(server.pathname.slice(1));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-pgbouncer-'));
  chmodSync(dir, 0o755);
  const port = onPort ?? (await freePort());
  const quote = (s: string): string => `"${s.replace(/"/g, '""')}"`;
  writeFileSync(
    path.join(dir, 'userlist.txt'),
    Object.entries(logins)
      .map(([u, p]) => `${quote(u)} ${quote(p)}\n`)
      .join(''),
    { mode: 0o644 },
  );
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${database} = host=${server.hostname} port=${server.port || 5432} dbname=${database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 500',
      ...(process.getuid?.() === 0 ? ['user = postgres'] : []),
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  let log = '';
  const child: ChildProcess = spawn(PGBOUNCER, [path.join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const accepts = (): Promise<boolean> =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}):\n${log}`);
        return accepts();
      },
      10_000,
      'pgbouncer to listen',
    );
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}; pgbouncer said:\n${log}`, { cause: err });
  }
  return {
    port,
    url(user) {
      const u = new URL(`postgresql://127.0.0.1:${port}/${encodeURIComponent(database)}`);
      u.username = user;
      u.password = logins[user]!;
      return u.toString();
    },
    output: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

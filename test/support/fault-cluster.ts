// A PostgreSQL cluster a test may stop and start (scripts/fault-cluster.sh):
// the shared test server must stay up for every other test file. Creating one
// needs root and Debian's pg_createcluster (CI has both); without them the
// tests that need it skip, saying which is missing.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { projectRoot } from '../../src/config/paths.ts';
import { backend, serverTest } from './backend.ts';
import { freePort } from './processes.ts';

const SCRIPT = path.join(projectRoot, 'scripts', 'fault-cluster.sh');
const PG_MAJOR = '15';

/** Why no cluster can be made here, or null when one can. */
export function faultClusterUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'creating a PostgreSQL cluster needs root (pg_createcluster)';
  if (!existsSync('/usr/bin/pg_createcluster')) return 'pg_createcluster (Debian postgresql-common) is not installed';
  if (!existsSync(`/usr/lib/postgresql/${PG_MAJOR}/bin/postgres`)) return `PostgreSQL ${PG_MAJOR} is not installed (scripts/install-postgres.sh)`;
  return null;
}

export interface FaultCluster {
  name: string;
  port: number;
  /** The cluster's superuser, over TCP with a password. */
  superuserUrl: string;
  /** Stops it (fast shutdown: every session is cut, as in an outage). */
  stop(): void;
  start(): void;
  /** Stops and removes it (data and configuration); safe to call twice. */
  drop(): void;
}

export interface PrimaryCluster extends FaultCluster {
  /** The superuser's password (a replica's base backup logs in with it). */
  password: string;
}

/** TLS on `cluster`: ssl = on with a self-signed certificate (CN localhost) made for it, reloaded; returns the certificate's path. */
export function enableTls(cluster: FaultCluster): string {
  script('tls', cluster.name);
  return `/var/lib/postgresql/${PG_MAJOR}/${cluster.name}/server.crt`;
}

/** A streaming replica of `primary` (pg_basebackup -R), on a free port, started; drop() it in afterAll. */
export async function createReplica(primary: PrimaryCluster): Promise<FaultCluster> {
  const name = `sheratan_faults_${process.pid}_${randomBytes(3).toString('hex')}`;
  const port = await freePort();
  return made(name, () => script('replica', name, primary.name, String(primary.port), String(port), primary.password), port);
}

const script = (...args: string[]): string => execFileSync('bash', [SCRIPT, ...args], { encoding: 'utf8', timeout: 120_000 }).trim();

/** A new cluster on a free port, started; drop() it in afterAll. */
export async function createFaultCluster(): Promise<PrimaryCluster> {
  // Clusters of test processes that were killed before their afterAll.
  script('sweep');
  const name = `sheratan_faults_${process.pid}_${randomBytes(3).toString('hex')}`;
  const port = await freePort();
  const password = `faults-${randomBytes(8).toString('hex')}`;
  return { ...made(name, () => script('create', name, String(port), password), port), password };
}

/** The cluster `make` creates (printing its superuser URL last), or none: a half-made one is removed. */
function made(name: string, make: () => string, port: number): FaultCluster {
  let dropped = false;
  const drop = (): void => {
    if (dropped) return;
    dropped = true;
    script('drop', name);
  };
  try {
    const superuserUrl = make().split('\n').at(-1)!;
    return { name, port, superuserUrl, stop: () => script('stop', name), start: () => script('start', name), drop };
  } catch (err) {
    // A half-made cluster (created, not started) is removed too.
    try {
      drop();
    } catch {
      // nothing was created
    }
    throw err;
  }
}

/** Why this run cannot make a cluster (server runs only), or null. */
export const clusterReason: string | null = backend === 'server' ? faultClusterUnavailable() : null;

/**
 * `test` for a test that needs a cluster of its own: server-only (embedded: a
 * visible skip with `embeddedReason`), and on a server run skipped, saying why,
 * only when no cluster can be made here.
 */
export function clusterTest(embeddedReason: string): jest.It {
  if (!clusterReason) return serverTest(embeddedReason);
  return Object.assign(
    (name: string, ...rest: unknown[]) => (test.skip as (...a: unknown[]) => void)(`${name} [skipped: ${clusterReason}]`, ...rest),
    test,
  ) as jest.It;
}

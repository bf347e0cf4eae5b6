// The connection itself: made (or why not, SSL refused included), the pool
// it leaves room for under max_connections, and encrypted when
// DATABASE_URL's sslmode asks for it.
import type { Database } from '../../database/connect.ts';
import type { Check, DoctorCheck } from './types.ts';

/** The sslmode a connection string asks for when it asks for an encrypted connection (require, verify-ca, verify-full). */
export function requiredSslMode(url: string): string | undefined {
  let mode: string | null;
  try {
    mode = new URL(url).searchParams.get('sslmode');
  } catch {
    return undefined;
  }
  return mode && ['require', 'verify-ca', 'verify-full'].includes(mode) ? mode : undefined;
}

/** Run once doctor's connection is made: it was. (connectionFailure is the line when it was not.) */
export const connection: DoctorCheck = {
  name: 'connection',
  async run({ config, db }) {
    return { name: 'connection', status: 'ok', detail: db.backend === 'embedded' ? `embedded database in ${config.dataDir}` : 'connected with DATABASE_URL' };
  },
};

/** The one line doctor prints when its connection could not be made: SSL refused, or the connection's error. */
export function connectionFailure(err: Error, db: Database): Check {
  const sslMode = db.backend === 'server' ? requiredSslMode(db.ownerUrl) : undefined;
  // node-postgres refuses to go on unencrypted when DATABASE_URL asks for TLS, so the SSL check is this failure.
  if (sslMode && /does not support SSL connections/i.test(err.message)) {
    return {
      name: 'SSL',
      status: 'fail',
      detail: `sslmode=${sslMode} in DATABASE_URL, but the server does not support SSL connections (nothing was connected unencrypted)`,
      fix:
        `enable SSL on the server (ssl = on in postgresql.conf, with ssl_cert_file and ssl_key_file, then reload it), ` +
        `or remove sslmode=${sslMode} from DATABASE_URL where the connection need not be encrypted (loopback, the embedded engine)`,
    };
  }
  return { name: 'connection', status: 'fail', detail: err.message, fix: 'check DATABASE_URL and that PostgreSQL is running and reachable' };
}

export const poolSettings: DoctorCheck = {
  name: 'pool settings',
  async run({ client, config }) {
    const maxConnections = Number((await client.query<{ m: string }>("select current_setting('max_connections') as m")).rows[0]!.m);
    const poolMax = config.poolSize + config.poolMaxOverflow;
    return poolMax < maxConnections
      ? {
          name: 'pool settings',
          status: 'ok',
          detail: `pool max ${poolMax} (DB_POOL_SIZE ${config.poolSize} + DB_MAX_OVERFLOW ${config.poolMaxOverflow}) per gateway; server max_connections ${maxConnections}`,
        }
      : {
          name: 'pool settings',
          status: 'warn',
          detail: `pool max ${poolMax} per gateway is not below the server's max_connections ${maxConnections}: connections will be refused`,
          fix: `lower DB_POOL_SIZE/DB_MAX_OVERFLOW so that (gateways × ${poolMax}) stays below max_connections, or raise max_connections`,
        };
  },
};

/** On a server whose DATABASE_URL asks for an encrypted connection: that this one is; nothing otherwise. */
export const ssl: DoctorCheck = {
  name: 'SSL',
  async run({ client, db }) {
    const mode = db.backend === 'server' ? requiredSslMode(db.ownerUrl) : undefined;
    if (!mode) return [];
    const encrypted = (await client.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows[0]?.ssl ?? false;
    return encrypted
      ? { name: 'SSL', status: 'ok', detail: 'the connection is encrypted' }
      : {
          name: 'SSL',
          status: 'fail',
          detail: `sslmode=${mode} but the connection is not encrypted`,
          fix: 'enable ssl on the server (ssl = on with a certificate)',
        };
  },
};

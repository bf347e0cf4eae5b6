// `npm run db:reporting-login -- --name acme_reports --tenant acme --password …`:
// a direct SQL login for a reporting tool, reading (as sheratan_readonly) one
// tenant's rows only. The tenant is bound in sheratan_private.tenant_logins,
// which current_tenant() reads by session_user, so the login cannot widen
// what it sees by setting jwt.claims.* or switching roles.
import { ConfigError, type Config } from '../config/config.ts';
import { databaseName, privilegedUrl, withPgClient, type Database } from '../database/connect.ts';
import { isClaimText, READONLY_ROLE } from '../config/roles.ts';

export interface ReportingLogin {
  name: string;
  tenant: string;
  password: string;
}

const RESERVED = /^(sheratan|pg_)/;

export function validateReportingLogin(login: Partial<ReportingLogin>): ReportingLogin {
  const { name, tenant, password } = login;
  if (!name || !/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new ConfigError(`--name must be a role name of lower-case letters, digits and _ (at most 63), not "${name ?? ''}"`);
  }
  if (RESERVED.test(name)) throw new ConfigError(`--name ${name} is reserved (names starting with sheratan or pg_ belong to the store and PostgreSQL)`);
  if (!tenant || !isClaimText(tenant)) {
    throw new ConfigError('--tenant is required: the tenant the login may read (at most 200 characters, no control characters)');
  }
  if (!password || password.length < 12) throw new ConfigError('--password is required, at least 12 characters');
  return { name, tenant, password };
}

/**
 * Creates (or updates) the login and binds it to its tenant. Creating a role
 * needs a role-creating connection: the embedded root, ROOT_DATABASE_URL, or an
 * owner with CREATEROLE. The binding is written as the owner.
 */
export async function createReportingLogin(config: Config, db: Database, login: ReportingLogin): Promise<void> {
  await withPgClient(privilegedUrl(config, db), async (client) => {
    const existing = (
      await client.query<{ rolsuper: boolean; rolbypassrls: boolean }>('select rolsuper, rolbypassrls from pg_roles where rolname = $1', [login.name])
    ).rows[0];
    if (existing && (existing.rolsuper || existing.rolbypassrls)) {
      throw new ConfigError(`role ${login.name} exists and bypasses row-level security (SUPERUSER or BYPASSRLS); choose another --name`);
    }
    const role = client.escapeIdentifier(login.name);
    const password = client.escapeLiteral(login.password);
    try {
      await client.query('begin');
      await client.query(existing ? `alter role ${role} with login password ${password}` : `create role ${role} with login password ${password}`);
      await client.query(`alter role ${role} with nosuperuser nocreatedb nocreaterole nobypassrls inherit`);
      await client.query(`grant ${READONLY_ROLE} to ${role}`);
      await client.query(`grant connect on database ${client.escapeIdentifier(databaseName(db.ownerUrl))} to ${role}`);
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      if ((err as { code?: string }).code === '42501') {
        throw new Error(
          `creating the login role ${login.name} needs a role that may create roles: set ROOT_DATABASE_URL (a superuser) for this command (${(err as Error).message})`,
          { cause: err },
        );
      }
      throw err;
    }
  });
  await withPgClient(db.ownerUrl, (client) =>
    client.query(
      `insert into sheratan_private.tenant_logins (login_role, tenant) values ($1, $2)
         on conflict (login_role) do update set tenant = excluded.tenant`,
      [login.name, login.tenant],
    ),
  );
}

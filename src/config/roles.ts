// The database roles, named once for the TypeScript side (graphile/starter's
// role trio plus the gateway's login; the owner is whoever DATABASE_URL logs
// in as, and the embedded engine names its own logins, packages/pglite-server/src/instance.ts). Roles are cluster-wide,
// so several stores on one PostgreSQL cluster each need their own: every API
// role's name is DATABASE_ROLE_PREFIX followed by its part (_authenticator,
// _app, _readonly, _anonymous); the default prefix `sheratan` gives the names
// the committed migrations were written with. A process serves one store, so
// the names are process-wide: read from the environment when this module
// loads, and set again by loadConfig() once `.env` has been read. They are
// live bindings (`export let`): a module that imports APP_ROLE sees the
// store's name at the moment it uses it.
/** The prefix the committed migrations up to 000013 name the roles with, literally. */
export const DEFAULT_ROLE_PREFIX = 'sheratan';

/** The four API roles' names for a prefix. */
export function roleNames(prefix: string) {
  return {
    authenticator: `${prefix}_authenticator`,
    app: `${prefix}_app`,
    readonly: `${prefix}_readonly`,
    anonymous: `${prefix}_anonymous`,
  };
}

/**
 * Why `prefix` cannot name a store's roles, or null: a lower-case SQL
 * identifier (no quoting anywhere), short enough that `_authenticator` still
 * fits PostgreSQL's 63 bytes.
 */
export function rolePrefixProblem(prefix: string): string | null {
  if (!/^[a-z][a-z0-9_]*$/.test(prefix)) return `DATABASE_ROLE_PREFIX must be a lower-case identifier (a-z, 0-9, _; a letter first), not "${prefix}"`;
  if (prefix.length > 40) return `DATABASE_ROLE_PREFIX must be at most 40 characters (its roles' names add up to 14 more), not ${prefix.length}`;
  return null;
}

/** The names the committed migrations up to 000013 grant to; a store with another prefix maps them (migrations/roles-map.sql). */
export const COMMITTED_ROLES = roleNames(DEFAULT_ROLE_PREFIX);

/**
 * The prefix in force in this process. The embedded engine keeps the
 * authenticator's password itself under the default name (embedded/instance.ts),
 * so a prefix needs a server (config.ts refuses it without DATABASE_URL).
 */
export let ROLE_PREFIX = DEFAULT_ROLE_PREFIX;
/** The gateway's login: it inherits nothing and may only become the three below. */
export let AUTHENTICATOR_ROLE = COMMITTED_ROLES.authenticator;
/** What a tenant's API requests run as. */
export let APP_ROLE = COMMITTED_ROLES.app;
/** Reporting: reads only, always within one tenant. */
export let READONLY_ROLE = COMMITTED_ROLES.readonly;
/** Requests without a token. */
export let ANONYMOUS_ROLE = COMMITTED_ROLES.anonymous;
/** The roles a token may name. */
export let API_ROLES: readonly string[] = [APP_ROLE, READONLY_ROLE];
export type ApiRole = string;
/** The roles migrations/afterReset.sql keeps in place: the gateway's login and the three it may become. */
export let DATABASE_ROLES: readonly string[] = [AUTHENTICATOR_ROLE, APP_ROLE, READONLY_ROLE, ANONYMOUS_ROLE];

/** Names this process's roles after `prefix` (DATABASE_ROLE_PREFIX); throws on a prefix that cannot be one. */
export function useRolePrefix(prefix: string): void {
  const problem = rolePrefixProblem(prefix);
  if (problem) throw new Error(problem);
  const names = roleNames(prefix);
  ROLE_PREFIX = prefix;
  AUTHENTICATOR_ROLE = names.authenticator;
  APP_ROLE = names.app;
  READONLY_ROLE = names.readonly;
  ANONYMOUS_ROLE = names.anonymous;
  API_ROLES = [APP_ROLE, READONLY_ROLE];
  DATABASE_ROLES = [AUTHENTICATOR_ROLE, APP_ROLE, READONLY_ROLE, ANONYMOUS_ROLE];
}

// The environment's prefix when there is a valid one (loadConfig reports a bad one, naming the variable).
{
  const fromEnv = process.env.DATABASE_ROLE_PREFIX;
  if (fromEnv && !rolePrefixProblem(fromEnv)) useRolePrefix(fromEnv);
}

/**
 * Text that may become a tenant or user setting: at most 200 characters and
 * no control characters (NUL among them, which Postgres settings cannot hold).
 */
export const isClaimText = (s: string): boolean => s.length <= 200 && !/\p{Cc}/u.test(s);

// The database roles, named once for the TypeScript side (graphile/starter's
// role trio plus the gateway's login and the owner). The engine names the two
// logins it keeps passwords for; the rest are here.
import { AUTHENTICATOR_ROLE, OWNER_ROLE } from '../embedded/instance.ts';

export { AUTHENTICATOR_ROLE, OWNER_ROLE };
/** What a tenant's API requests run as. */
export const APP_ROLE = 'sheratan_app';
/** Reporting: reads only, always within one tenant. */
export const READONLY_ROLE = 'sheratan_readonly';
/** Requests without a token. */
export const ANONYMOUS_ROLE = 'sheratan_anonymous';

/** The roles a token may name. */
export const API_ROLES = [APP_ROLE, READONLY_ROLE] as const;
export type ApiRole = (typeof API_ROLES)[number];
/** The roles migrations/afterReset.sql keeps in place: the gateway's login and the three it may become. */
export const DATABASE_ROLES = [AUTHENTICATOR_ROLE, APP_ROLE, READONLY_ROLE, ANONYMOUS_ROLE] as const;

/**
 * Text that may become a tenant or user setting: at most 200 characters and
 * no control characters (NUL among them, which Postgres settings cannot hold).
 */
export const isClaimText = (s: string): boolean => s.length <= 200 && !/\p{Cc}/u.test(s);

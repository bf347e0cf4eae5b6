// What keeps tenants apart: the API roles cannot bypass row-level security,
// the authenticator is LOGIN NOINHERIT, RLS is on every table, and the
// grants on sheratan.documents are the migrations'.
import { APP_ROLE, AUTHENTICATOR_ROLE, DATABASE_ROLES, READONLY_ROLE } from '../../config/roles.ts';
import type { DoctorCheck } from './types.ts';

export const rolesGrantsAndRls: DoctorCheck = {
  name: 'roles, grants and row-level security',
  async run({ client }) {
    const roles = (
      await client.query<{ rolname: string; rolcanlogin: boolean; rolinherit: boolean; rolbypassrls: boolean; rolsuper: boolean }>(
        'select rolname, rolcanlogin, rolinherit, rolbypassrls, rolsuper from pg_roles where rolname = any ($1)',
        [DATABASE_ROLES],
      )
    ).rows;
    const problems: string[] = [];
    for (const name of DATABASE_ROLES) {
      const r = roles.find((x) => x.rolname === name);
      if (!r) problems.push(`${name} is missing`);
      else if (r.rolsuper || r.rolbypassrls) problems.push(`${name} can bypass row-level security`);
    }
    const auth = roles.find((r) => r.rolname === AUTHENTICATOR_ROLE);
    if (auth && (!auth.rolcanlogin || auth.rolinherit)) problems.push(`${AUTHENTICATOR_ROLE} must be LOGIN NOINHERIT`);
    const noRls = (
      await client.query<{ t: string }>(`
        select c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'sheratan' and c.relkind = 'r' and not c.relrowsecurity`)
    ).rows.map((r) => r.t);
    if (noRls.length) problems.push(`row-level security is off on ${noRls.join(', ')}`);
    const grants = (
      await client
        .query<{ ok: boolean }>(
          "select has_table_privilege($1, 'sheratan.documents', 'select') and not has_table_privilege($2, 'sheratan.documents', 'insert') as ok",
          [APP_ROLE, READONLY_ROLE],
        )
        .catch(() => ({ rows: [{ ok: false }] }))
    ).rows[0]!.ok;
    if (!grants) problems.push('grants on sheratan.documents are not as the migrations set them');
    return problems.length
      ? {
          name: 'roles, grants and row-level security',
          status: 'fail',
          detail: problems.join('; '),
          fix: 'npm run db:migrate (it recreates the roles from migrations/afterReset.sql); in development npm run db:reset -- --erase',
        }
      : {
          name: 'roles, grants and row-level security',
          status: 'ok',
          detail: 'API roles exist without BYPASSRLS, the authenticator is NOINHERIT, RLS is on every table in sheratan',
        };
  },
};

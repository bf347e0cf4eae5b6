-- The role names the committed migrations up to 000013 were written with,
-- literally (from 000014 on they are placeholders): sheratan_authenticator,
-- sheratan_app, sheratan_readonly and sheratan_anonymous. A store whose roles
-- have another prefix (DATABASE_ROLE_PREFIX) still runs those migrations as
-- written, so the names must exist; here they are created, when missing, as
-- bare NOLOGIN roles with no members and nothing else. The migrations' grants
-- to them are moved to the store's own roles after every migrate
-- (roles-map.sql), so in such a store they hold nothing. Runs as the root user
-- after afterReset.sql (after every reset, and from db:bootstrap and before
-- every db:migrate); a no-op when the names exist, which they do for a store
-- with the default prefix, where they are its real roles.
do $$
declare
  committed text;
begin
  foreach committed in array array['sheratan_authenticator', 'sheratan_app', 'sheratan_readonly', 'sheratan_anonymous'] loop
    if not exists (select 1 from pg_roles where rolname = committed) then
      execute format('create role %I nologin nosuperuser nobypassrls', committed);
    end if;
  end loop;
exception
  when insufficient_privilege then
    raise exception 'the role names of the committed migrations (sheratan_app and its kin) are missing and % may not create them', current_user
      using errcode = 'insufficient_privilege',
            hint = 'run `npm run db:bootstrap` once with ROOT_DATABASE_URL set to a superuser connection (see README "Several stores on one cluster")';
end
$$;

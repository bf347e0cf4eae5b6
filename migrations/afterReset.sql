-- Cluster-wide roles and the vector extension (SPEC §5). Idempotent, and it
-- changes only what is missing or wrong: it runs as a superuser after every
-- graphile-migrate reset and from `npm run db:bootstrap`, and before every
-- `db:migrate`, where on a server it may run as the database owner, who is not
-- a superuser. There it is a no-op once the bootstrap has been done, and it
-- fails with the way out when something needs a superuser. The roles' names
-- are graphile-migrate placeholders (src/config/roles.ts names them).
do $$
declare
  api_role text;
  problem text;
begin
  -- The authenticator logs in, inherits nothing, and can only become the three API roles.
  if not exists (select 1 from pg_roles where rolname = ':DATABASE_AUTHENTICATOR') then
    problem := 'role :DATABASE_AUTHENTICATOR is missing';
    create role :DATABASE_AUTHENTICATOR with login noinherit nosuperuser nocreatedb nocreaterole nobypassrls;
  elsif exists (
    select 1 from pg_roles where rolname = ':DATABASE_AUTHENTICATOR'
       and (not rolcanlogin or rolinherit or rolsuper or rolcreatedb or rolcreaterole or rolbypassrls)
  ) then
    problem := 'role :DATABASE_AUTHENTICATOR must be LOGIN NOINHERIT without SUPERUSER, CREATEDB, CREATEROLE or BYPASSRLS';
    alter role :DATABASE_AUTHENTICATOR with login noinherit nosuperuser nocreatedb nocreaterole nobypassrls;
  end if;

  -- The API roles cannot log in, bypass row-level security or own anything.
  foreach api_role in array array[':DATABASE_VISITOR', ':DATABASE_READONLY', ':DATABASE_ANONYMOUS'] loop
    if not exists (select 1 from pg_roles where rolname = api_role) then
      problem := format('role %s is missing', api_role);
      execute format('create role %I nologin nosuperuser nobypassrls', api_role);
    elsif exists (select 1 from pg_roles where rolname = api_role and (rolcanlogin or rolsuper or rolbypassrls)) then
      problem := format('role %s must be NOLOGIN without SUPERUSER or BYPASSRLS', api_role);
      execute format('alter role %I with nologin nosuperuser nobypassrls', api_role);
    end if;
    if not pg_has_role(':DATABASE_AUTHENTICATOR', api_role, 'member') then
      problem := format(':DATABASE_AUTHENTICATOR is not a member of %s', api_role);
      execute format('grant %I to :DATABASE_AUTHENTICATOR', api_role);
    end if;
  end loop;

  -- graphile-migrate's reset revokes CONNECT from PUBLIC; the gateway must still connect.
  if not has_database_privilege(':DATABASE_AUTHENTICATOR', current_database(), 'connect') then
    problem := format(':DATABASE_AUTHENTICATOR may not connect to database %s', current_database());
    execute format('grant connect on database %I to :DATABASE_AUTHENTICATOR', current_database());
  end if;

  -- pgvector is not a trusted extension: creating it needs a superuser once per database.
  if not exists (select 1 from pg_extension where extname = 'vector') then
    problem := format('the vector extension is not created in database %s', current_database());
    create extension vector;
  end if;
exception
  when insufficient_privilege then
    raise exception '% and % may not fix it', problem, current_user
      using errcode = 'insufficient_privilege',
            hint = 'run `npm run db:bootstrap` once with ROOT_DATABASE_URL set to a superuser connection (see README "Server setup")';
end
$$;

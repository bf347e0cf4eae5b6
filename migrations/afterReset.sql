-- Cluster-wide roles (SPEC §5). Idempotent: runs after every reset and before
-- every migrate. Runs as the root user.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'sheratan_authenticator') then
    create role sheratan_authenticator with login noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'sheratan_app') then
    create role sheratan_app nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'sheratan_readonly') then
    create role sheratan_readonly nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'sheratan_anonymous') then
    create role sheratan_anonymous nologin;
  end if;
end
$$;

-- The API roles can never bypass row-level security or own anything.
alter role sheratan_authenticator with login noinherit nosuperuser nocreatedb nocreaterole nobypassrls;
alter role sheratan_app with nologin nosuperuser nobypassrls;
alter role sheratan_readonly with nologin nosuperuser nobypassrls;
alter role sheratan_anonymous with nologin nosuperuser nobypassrls;

-- The authenticator can become exactly these three roles, and nothing else.
grant sheratan_app to sheratan_authenticator;
grant sheratan_readonly to sheratan_authenticator;
grant sheratan_anonymous to sheratan_authenticator;

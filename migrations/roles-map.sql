-- A store whose roles have another prefix than the committed migrations' names
-- (DATABASE_ROLE_PREFIX; README "Several stores on one cluster"): what the
-- migrations up to 000013 granted to sheratan_authenticator, sheratan_app,
-- sheratan_readonly and sheratan_anonymous, literally, in THIS database is
-- moved to the store's own roles (the placeholders :DATABASE_AUTHENTICATOR,
-- :DATABASE_VISITOR, :DATABASE_READONLY, :DATABASE_ANONYMOUS): the same
-- privileges on the same objects and columns, the same policies, then revoked
-- from the committed names. Another store on the cluster whose roles carry
-- those names so gets nothing here. Runs as the owner after every migrate
-- (.gmrc afterAllMigrations, forced by db:migrate); idempotent; a no-op for a
-- store with the default prefix, where the names are its own.
do $$
declare
  pair text[];
  committed oid;
  r record;
begin
  foreach pair slice 1 in array array[
    array['sheratan_authenticator', ':DATABASE_AUTHENTICATOR'],
    array['sheratan_app', ':DATABASE_VISITOR'],
    array['sheratan_readonly', ':DATABASE_READONLY'],
    array['sheratan_anonymous', ':DATABASE_ANONYMOUS']
  ] loop
    continue when pair[1] = pair[2];
    select oid into committed from pg_roles where rolname = pair[1];
    continue when committed is null;

    -- Columns first: revoking a table's privileges below revokes its columns' too.
    for r in
      select c.oid::regclass::text as obj, quote_ident(att.attname) as col, a.privilege_type, a.is_grantable
        from pg_attribute att join pg_class c on c.oid = att.attrelid, aclexplode(att.attacl) a
       where a.grantee = committed
    loop
      execute format('grant %s (%s) on table %s to %I%s', r.privilege_type, r.col, r.obj, pair[2], case when r.is_grantable then ' with grant option' else '' end);
      execute format('revoke all (%s) on table %s from %I', r.col, r.obj, pair[1]);
    end loop;
    -- Tables, views and sequences.
    for r in
      select c.oid::regclass::text as obj, case c.relkind when 'S' then 'sequence' else 'table' end as kind, a.privilege_type, a.is_grantable
        from pg_class c, aclexplode(c.relacl) a
       where a.grantee = committed
    loop
      execute format('grant %s on %s %s to %I%s', r.privilege_type, r.kind, r.obj, pair[2], case when r.is_grantable then ' with grant option' else '' end);
      execute format('revoke all on %s %s from %I', r.kind, r.obj, pair[1]);
    end loop;
    -- Functions and procedures.
    for r in
      select p.oid::regprocedure::text as obj, a.privilege_type, a.is_grantable
        from pg_proc p, aclexplode(p.proacl) a
       where a.grantee = committed
    loop
      execute format('grant %s on routine %s to %I%s', r.privilege_type, r.obj, pair[2], case when r.is_grantable then ' with grant option' else '' end);
      execute format('revoke all on routine %s from %I', r.obj, pair[1]);
    end loop;
    -- Schemas.
    for r in
      select quote_ident(n.nspname) as obj, a.privilege_type, a.is_grantable
        from pg_namespace n, aclexplode(n.nspacl) a
       where a.grantee = committed
    loop
      execute format('grant %s on schema %s to %I%s', r.privilege_type, r.obj, pair[2], case when r.is_grantable then ' with grant option' else '' end);
      execute format('revoke all on schema %s from %I', r.obj, pair[1]);
    end loop;
    -- This database (CONNECT, TEMPORARY).
    for r in
      select a.privilege_type
        from pg_database d, aclexplode(d.datacl) a
       where d.datname = current_database() and a.grantee = committed
    loop
      execute format('grant %s on database %I to %I', r.privilege_type, current_database(), pair[2]);
      execute format('revoke all on database %I from %I', current_database(), pair[1]);
    end loop;
    -- Row-level security policies: the store's role in place of the committed name.
    for r in
      select p.polname, p.polrelid::regclass::text as tbl,
             (select string_agg(case when x = 0 then 'public' when x = committed then quote_ident(pair[2]) else x::regrole::text end, ', ')
                from unnest(p.polroles) x) as roles
        from pg_policy p
       where committed = any (p.polroles)
    loop
      execute format('alter policy %I on %s to %s', r.polname, r.tbl, r.roles);
    end loop;
  end loop;
end
$$;

-- Migration 000015 revoked these from the store's roles (by placeholder), which
-- in a store with another prefix did not hold them yet: the committed names
-- did, and the map above has just moved them over. Revoked again here, as
-- 000015 does (a no-op for a store with the default prefix).
revoke execute on function sheratan_private.current_tenant(), sheratan_private.login_tenant() from :DATABASE_ANONYMOUS;
revoke execute on function sheratan_private.current_user_id() from :DATABASE_VISITOR, :DATABASE_READONLY, :DATABASE_ANONYMOUS;
revoke execute on function sheratan_private.job_lock_timeout() from :DATABASE_VISITOR;

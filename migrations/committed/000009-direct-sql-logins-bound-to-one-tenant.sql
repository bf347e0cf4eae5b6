--! Previous: sha1:d3e393d033fea2673783e82db6102a55191be87d
--! Hash: sha1:1435a2f60fdbef629aa48101e18f363d69967850
--! Message: Direct SQL logins bound to one tenant

-- Direct SQL logins bound to one tenant (reporting tools that connect with
-- psql or a BI driver instead of /reporting/graphql). A setting such as
-- `alter role … set jwt.claims.tenant` cannot bind a login: the login itself
-- may `set jwt.claims.tenant = 'other'`. The binding lives in an owner-only
-- table keyed by the login role, and current_tenant() reads it for every
-- session that did not log in as the gateway's authenticator: a session
-- cannot change its session_user, so the tenant is the owner's to choose.
create table if not exists sheratan_private.tenant_logins (
  login_role name primary key,
  tenant text not null check (tenant <> '' and tenant !~ '[[:cntrl:]]'),
  created_at timestamptz not null default now()
);
comment on table sheratan_private.tenant_logins is
  'Login roles bound to one tenant (npm run db:reporting-login): a session logged in as one of them sees that tenant only, whatever it sets.';
comment on column sheratan_private.tenant_logins.login_role is 'The login role (its session_user).';
comment on column sheratan_private.tenant_logins.tenant is 'The only tenant its sessions see.';
-- Each session may read its own binding only: the rows of its login
-- (session_user) or, on the embedded engine, which logs every client in as
-- one superuser session and switches to the login role, of its current role.
alter table sheratan_private.tenant_logins enable row level security;
revoke all on sheratan_private.tenant_logins from public;
drop policy if exists select_own_binding on sheratan_private.tenant_logins;
create policy select_own_binding on sheratan_private.tenant_logins for select to sheratan_app, sheratan_readonly, sheratan_anonymous
  using (login_role = session_user or login_role = current_user);
grant select on sheratan_private.tenant_logins to sheratan_app, sheratan_readonly, sheratan_anonymous;

create or replace function sheratan_private.login_tenant() returns text
  language sql stable parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce(
    (select l.tenant from sheratan_private.tenant_logins l where l.login_role = session_user),
    (select l.tenant from sheratan_private.tenant_logins l where l.login_role = current_user),
    nullif(current_setting('jwt.claims.tenant', true), '')
  )
$$;
comment on function sheratan_private.login_tenant() is
  'The tenant of a session that did not log in as the authenticator: the tenant its login (or, on the embedded engine, its login role) is bound to, else the tenant claim (the owner and admin sessions).';
revoke all on function sheratan_private.login_tenant() from public;
grant execute on function sheratan_private.login_tenant() to sheratan_app, sheratan_readonly, sheratan_anonymous;

-- The gateway's sessions (session_user = the authenticator) take the claim
-- without a lookup; every other session goes through the binding.
create or replace function sheratan_private.current_tenant() returns text
  language sql stable parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  select case when session_user = 'sheratan_authenticator'
              then nullif(current_setting('jwt.claims.tenant', true), '')
              else sheratan_private.login_tenant() end
$$;
comment on function sheratan_private.current_tenant() is
  'The tenant of the current request (the token''s `tenant` claim), or, for a direct login bound with db:reporting-login, its bound tenant; null when there is none.';

// Logins as a boundary on the embedded engine (issue 25).
//
// PGlite's backend is authenticated as its bootstrap role (`postgres`, oid
// 10), and Postgres lets a session whose AUTHENTICATED role is a superuser
// `SET SESSION AUTHORIZATION` to anyone, by any path (SET, set_config, a DO
// block, a function, either protocol). Postgres reads that role's superuser
// flag from pg_authid at the moment of the check (PGlite runs as a backend
// under a postmaster, so single-user mode's "the bootstrap role is always a
// superuser" escape does not apply). So while a restricted login (a socket
// client whose role is not a superuser) holds the backend, the engine SEALS
// it: the bootstrap role loses SUPERUSER (and CREATEROLE, CREATEDB,
// REPLICATION, BYPASSRLS), and Postgres itself refuses every switch to
// another role. The one switch Postgres always allows is back to the
// authenticated role itself; sealed, that role is made harmless:
//  - an event trigger, present only while sealed, refuses every DDL command
//    (CREATE/ALTER of functions in pg_catalog, GRANT, COMMENT…) whose
//    session user is the bootstrap role;
//  - the bootstrap role holds no privilege PUBLIC lacks on the functions
//    and relations it owns (pg_read_file, lo_export, pg_statistic,
//    pg_authid.rolpassword…): a superuser does not need them, and sealed it
//    is not one;
//  - the database belongs to the owner, not to the bootstrap role;
//  - and the engine ends a restricted connection whose session user is not
//    its login after any message (pg-server.ts).
// The engine unseals with a key only it holds (the hash of the key is in
// the function, the key in the data directory), so a sealed session that
// calls unseal() gets an error. A crash while sealed is undone at the next
// open (bootstrap below).
import type { PGlite } from '@electric-sql/pglite';
import { createHash } from 'node:crypto';

/** The engine's schema: the seal's functions (left out of dumps; the owner owns it). */
export const ENGINE_SCHEMA = 'sheratan_engine';
const SEALED_TRIGGER = 'sheratan_engine_sealed';

const hashOf = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

/** What the bootstrap role gives up for good, and the seal's functions (idempotent; run at every open as the superuser). */
function installSql(owner: string, key: string): string {
  const attrs = ['rolsuper', 'rolcreaterole', 'rolcreatedb', 'rolreplication', 'rolbypassrls'];
  return `
    create schema if not exists ${ENGINE_SCHEMA};
    alter schema ${ENGINE_SCHEMA} owner to ${owner};
    grant usage on schema ${ENGINE_SCHEMA} to public;
    comment on schema ${ENGINE_SCHEMA} is 'The embedded engine''s own functions: sealing the bootstrap role while a restricted login holds the backend (packages/pglite-server/src/login-boundary.ts).';

    create or replace function ${ENGINE_SCHEMA}.refuse_ddl() returns event_trigger language plpgsql as $f$
    begin
      if (select oid from pg_roles where rolname = session_user) = 10 then
        raise exception using errcode = '42501',
          message = format('%s refused: the embedded engine''s bootstrap role cannot run DDL while a restricted login holds the backend', tg_tag);
      end if;
    end $f$;
    alter function ${ENGINE_SCHEMA}.refuse_ddl() owner to ${owner};
    comment on function ${ENGINE_SCHEMA}.refuse_ddl() is 'While sealed: refuses DDL by the bootstrap role (not a superuser then, but the owner of the system catalogs and functions).';

    create or replace function ${ENGINE_SCHEMA}.seal(key text) returns void language plpgsql security definer set search_path = pg_catalog as $f$
    begin
      if sha256(convert_to(key, 'UTF8')) <> '\\x${hashOf(key)}'::bytea then
        raise exception using errcode = '42501', message = 'only the embedded engine may seal its backend';
      end if;
      update pg_authid set ${attrs.map((a) => `${a} = false`).join(', ')} where oid = 10;
      if not exists (select 1 from pg_event_trigger where evtname = '${SEALED_TRIGGER}') then
        create event trigger ${SEALED_TRIGGER} on ddl_command_start execute function ${ENGINE_SCHEMA}.refuse_ddl();
      end if;
    end $f$;
    alter function ${ENGINE_SCHEMA}.seal(text) owner to ${owner};
    comment on function ${ENGINE_SCHEMA}.seal(text) is 'The bootstrap role stops being a superuser, so Postgres refuses SET SESSION AUTHORIZATION to anyone else (login-boundary.ts).';

    create or replace function ${ENGINE_SCHEMA}.unseal(key text) returns void language plpgsql security definer set search_path = pg_catalog as $f$
    begin
      if sha256(convert_to(key, 'UTF8')) <> '\\x${hashOf(key)}'::bytea then
        raise exception using errcode = '42501', message = 'only the embedded engine may unseal its backend';
      end if;
      update pg_authid set ${attrs.map((a) => `${a} = true`).join(', ')} where oid = 10;
      drop event trigger if exists ${SEALED_TRIGGER};
      -- Settings the sealed bootstrap role may have given itself (ALTER ROLE … SET) do not outlive the seal.
      delete from pg_db_role_setting where setrole = 10;
    end $f$;
    alter function ${ENGINE_SCHEMA}.unseal(text) owner to ${owner};
    comment on function ${ENGINE_SCHEMA}.unseal(text) is 'Undoes seal(), for the engine only (it holds the key).';

    do $f$
    declare obj text;
    begin
      -- A superuser needs no grant: sealed, the bootstrap role keeps only what PUBLIC has.
      for obj in
        select p.oid::regprocedure::text from pg_proc p
         where p.proacl is not null
           and exists (select 1 from aclexplode(p.proacl) a where a.grantee = 10 and a.privilege_type = 'EXECUTE')
           and not exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0 and a.privilege_type = 'EXECUTE')
      loop
        execute format('revoke execute on function %s from postgres', obj);
      end loop;
      for obj in
        select c.oid::regclass::text from pg_class c
         where c.relacl is not null and c.relkind in ('r', 'v', 'm')
           and exists (select 1 from aclexplode(c.relacl) a where a.grantee = 10 and a.privilege_type = 'SELECT')
           and not exists (select 1 from aclexplode(c.relacl) a where a.grantee = 0 and a.privilege_type = 'SELECT')
      loop
        execute format('revoke select on %s from postgres', obj);
      end loop;
      -- pg_roles reads pg_authid as its owner: every column but the password.
      grant select (oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil)
        on pg_catalog.pg_authid to postgres;
      if (select datdba from pg_database where datname = current_database()) = 10 then
        execute format('alter database %I owner to ${owner}', current_database());
      end if;
    end $f$;
  `;
}

/** Undoes a seal left by a stop while a restricted login held the backend (run first at open). */
export async function unsealLeftOver(db: PGlite, key: string): Promise<void> {
  const r = await db.query<{ rolsuper: boolean }>('select rolsuper from pg_roles where oid = 10');
  if (r.rows[0]?.rolsuper === false) await unseal(db, key);
}

/** Installs the seal's functions and takes away what the bootstrap role must not keep; run as it at open. */
export async function installLoginBoundary(db: PGlite, owner: string, key: string): Promise<void> {
  await db.exec(installSql(owner, key));
}

/** Seals the backend; run once the restricted login is its session user. */
export async function seal(db: PGlite, key: string): Promise<void> {
  await db.query(`select ${ENGINE_SCHEMA}.seal($1)`, [key]);
}

/** Unseals it; run before the engine becomes the bootstrap role again. */
export async function unseal(db: PGlite, key: string): Promise<void> {
  await db.query(`select ${ENGINE_SCHEMA}.unseal($1)`, [key]);
}

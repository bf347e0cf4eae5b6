// Opening PGlite instances: the persistent database and the throw-away shadow.
import { mkdir, rm } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { installLoginBoundary, unsealLeftOver } from './login-boundary.ts';

/** The embedded superuser role that owns the schema, as `sheratan` owns it on a server. */
export const OWNER_ROLE = 'sheratan';
/** The gateway's login (created by the migrations); its password is generated in the data directory like the owner's. */
export const AUTHENTICATOR_ROLE = 'sheratan_authenticator';
/** PGlite's bootstrap superuser. */
export const ENGINE_SUPERUSER = 'postgres';

async function bootstrap(db: PGlite, sealKey: string): Promise<PGlite> {
  // A backend left sealed by a stop is unsealed first: the bootstrap role must be a superuser here.
  await unsealLeftOver(db, sealKey);
  // PGlite starts with only `postgres`; the owner must exist before anyone can log in as it.
  await db.exec(`
    do $$ begin
      if not exists (select 1 from pg_roles where rolname = '${OWNER_ROLE}') then
        create role ${OWNER_ROLE} with login superuser;
      end if;
    end $$;
  `);
  await installLoginBoundary(db, OWNER_ROLE, sealKey);
  return db;
}

// PGlite starts its backend with search_path=public; a server's default is
// `"$user", public`, under which the owner `sheratan` finds its own schema
// (psql's \dt lists the store's tables, as on a server).
const startParams = PGlite.defaultStartParams.map((p) => (p === 'search_path=public' ? 'search_path="$user", public' : p));

/** The persistent database; `sealKey` unseals its backend (login-boundary.ts). */
export async function openPersistent(pgdata: string, sealKey: string): Promise<PGlite> {
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  return bootstrap(await PGlite.create({ dataDir: pgdata, extensions: { vector }, startParams }), sealKey);
}

export async function openInMemory(sealKey: string): Promise<PGlite> {
  return bootstrap(await PGlite.create({ extensions: { vector }, startParams }), sealKey);
}

export async function wipePersistent(pgdata: string): Promise<void> {
  await rm(pgdata, { recursive: true, force: true });
}

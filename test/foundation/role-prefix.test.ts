// DATABASE_ROLE_PREFIX (issue 32): the API roles' names come from one setting.
// The configuration refuses a prefix that cannot name roles, one without a
// server, and an AUTH_DATABASE_URL that logs in as another store's
// authenticator; the TypeScript side names roles only through config/roles.ts.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import * as roles from '../../src/config/roles.ts';
import * as engineRoles from '@sheratan/pglite-server';
import { projectRoot } from '../../src/config/paths.ts';

const server = { DATABASE_URL: 'postgres://owner:pw@localhost:5432/store' };

test.each([
  [{ ...server, DATABASE_ROLE_PREFIX: 'Store' }, /^DATABASE_ROLE_PREFIX must be a lower-case identifier/],
  [{ ...server, DATABASE_ROLE_PREFIX: '1store' }, /^DATABASE_ROLE_PREFIX must be a lower-case identifier/],
  [{ ...server, DATABASE_ROLE_PREFIX: 'a"; drop role x; --' }, /^DATABASE_ROLE_PREFIX must be a lower-case identifier/],
  [{ ...server, DATABASE_ROLE_PREFIX: 'a'.repeat(41) }, /^DATABASE_ROLE_PREFIX must be at most 40 characters/],
  [{ DATABASE_ROLE_PREFIX: 'store_b' }, /^DATABASE_ROLE_PREFIX is set but DATABASE_URL is not/],
  [
    { ...server, DATABASE_ROLE_PREFIX: 'store_b', AUTH_DATABASE_URL: 'postgres://sheratan_authenticator:pw@localhost:5432/store' },
    /^AUTH_DATABASE_URL logs in as sheratan_authenticator, but this store's authenticator is store_b_authenticator \(DATABASE_ROLE_PREFIX=store_b\)/,
  ],
  [
    { ...server, AUTH_DATABASE_URL: 'postgres://store_b_authenticator:pw@localhost:5432/store' },
    /^AUTH_DATABASE_URL logs in as store_b_authenticator, but this store's authenticator is sheratan_authenticator/,
  ],
  // The pooler's login is the gateway's too.
  [
    { ...server, POOLER_DATABASE_URL: 'postgres://sheratan_owner:pw@localhost:6432/store' },
    /^POOLER_DATABASE_URL logs in as sheratan_owner, but this store's authenticator is sheratan_authenticator/,
  ],
  [{ POOLER_DATABASE_URL: 'postgres://sheratan_authenticator:pw@localhost:6432/store' }, /^POOLER_DATABASE_URL is set but DATABASE_URL is not/],
])('a bad role setting is one line naming the variable: %j', (env, message) => {
  expect(() => parseConfig(env)).toThrow(message);
});

test('the prefix names all four roles, and the default gives the names the committed migrations use', () => {
  expect(parseConfig(server).databaseRolePrefix).toBe('sheratan');
  expect(parseConfig({ ...server, DATABASE_ROLE_PREFIX: 'store_b', AUTH_DATABASE_URL: 'postgres://store_b_authenticator:pw@h/store' }).databaseRolePrefix).toBe(
    'store_b',
  );
  expect(roles.roleNames('store_b')).toEqual({
    authenticator: 'store_b_authenticator',
    app: 'store_b_app',
    readonly: 'store_b_readonly',
    anonymous: 'store_b_anonymous',
  });
  expect(Object.values(roles.COMMITTED_ROLES)).toEqual(['sheratan_authenticator', 'sheratan_app', 'sheratan_readonly', 'sheratan_anonymous']);
});

test('useRolePrefix renames every role an importer sees (live bindings), and back', () => {
  try {
    roles.useRolePrefix('store_b');
    expect([roles.AUTHENTICATOR_ROLE, roles.APP_ROLE, roles.READONLY_ROLE, roles.ANONYMOUS_ROLE]).toEqual(Object.values(roles.roleNames('store_b')));
    expect(roles.API_ROLES).toEqual(['store_b_app', 'store_b_readonly']);
    expect(roles.DATABASE_ROLES).toEqual(Object.values(roles.roleNames('store_b')));
    expect(() => roles.useRolePrefix('Bad')).toThrow(/lower-case identifier/);
  } finally {
    roles.useRolePrefix(roles.DEFAULT_ROLE_PREFIX);
  }
  expect(roles.DATABASE_ROLES).toEqual(Object.values(roles.COMMITTED_ROLES));
});

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : full.endsWith('.ts') ? [full] : [];
  });
}

test("TypeScript, the tests' support included, names the roles only through config/roles.ts and the engine package's instance.ts", () => {
  const literal = /\bsheratan_(app|readonly|anonymous|authenticator)\b/;
  const allowed = new Set(['packages/pglite-server/src/instance.ts']);
  const found = ['src', 'plugins', 'packages/pglite-server/src', 'test/support', 'packages/pglite-server/test/support']
    .flatMap((dir) => files(path.join(projectRoot, dir)))
    .map((f) => path.relative(projectRoot, f))
    .filter((f) => !allowed.has(f))
    .flatMap((f) =>
      readFileSync(path.join(projectRoot, f), 'utf8')
        .split('\n')
        .map((line, i) => [`${f}:${i + 1}`, line.replace(/\/\/.*$|^\s*\*.*$/, '')] as const)
        .filter(([, line]) => literal.test(line))
        .map(([where]) => where),
    );
  expect(found).toEqual([]);
});

test("the embedded engine's own logins are the default prefix's owner and authenticator (the migrations grant to those names)", () => {
  expect(engineRoles.AUTHENTICATOR_ROLE).toBe(roles.roleNames(roles.DEFAULT_ROLE_PREFIX).authenticator);
  expect(engineRoles.OWNER_ROLE).toBe(roles.DEFAULT_ROLE_PREFIX);
});

// Tokens: every bad token is refused with 401/403 and a clear GraphQL error.
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { pgSettingsFor } from '../../src/http/graphql-context.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const secret = (): string => h.config.jwtSecret!;
/** A token as a client library makes one: with an expiry, unless the test is about that. */
const sign = (payload: object, key: string = secret(), options: jwt.SignOptions = {}): string => jwt.sign(payload, key, { expiresIn: '5m', ...options });
const query = '{ allDocuments { totalCount } }';

test.each([
  ['expired', () => jwt.sign({ role: 'sheratan_app', tenant: 'acme', exp: Math.floor(Date.now() / 1000) - 60 }, secret()), 401, /expired/],
  ['badly signed', () => sign({ role: 'sheratan_app', tenant: 'acme' }, 'x'.repeat(40)), 401, /invalid signature/],
  ['alg none', () => sign({ role: 'sheratan_app', tenant: 'acme' }, '', { algorithm: 'none' }), 401, /invalid/],
  ['HS512', () => sign({ role: 'sheratan_app', tenant: 'acme' }, secret(), { algorithm: 'HS512' }), 401, /invalid algorithm/],
  ['malformed', () => 'not.a.jwt', 401, /invalid/],
  ['unknown role', () => sign({ role: 'sheratan', tenant: 'acme' }), 403, /role must be one of sheratan_app, sheratan_readonly/],
  ['superuser role', () => sign({ role: 'postgres', tenant: 'acme' }), 403, /role must be one of/],
  ['missing tenant', () => sign({ role: 'sheratan_app' }), 401, /"tenant" claim/],
  [
    'never expiring',
    () => jwt.sign({ role: 'sheratan_app', tenant: 'acme' }, secret()),
    401,
    /must carry an "exp" claim \(tokens that never expire are refused; see JWT_MAX_AGE\)/,
  ],
  ['NUL in the tenant', () => sign({ role: 'sheratan_app', tenant: 'ac\u0000me' }), 401, /"tenant" claim .*without control characters/],
  ['newline in sub', () => sign({ role: 'sheratan_app', tenant: 'acme', sub: 'a\nb' }), 401, /"sub" claim .*without control characters/],
  ['201-character tenant', () => sign({ role: 'sheratan_app', tenant: 't'.repeat(201) }), 401, /"tenant" claim \(a non-empty string of at most 200 characters/],
  [
    '201-character sub',
    () => sign({ role: 'sheratan_app', tenant: 'acme', sub: 's'.repeat(201) }),
    401,
    /"sub" claim must be a string of at most 200 characters/,
  ],
])('%s token → %i with a clear error', async (_name, make, status, message) => {
  const res = await h.graphql(query, { token: make() });
  expect(res.status).toBe(status);
  expect(res.body.errors?.[0]?.message).toMatch(message);
  expect(res.body.data).toBeUndefined();
});

test('a non-Bearer Authorization header is refused', async () => {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Basic abc' },
    body: JSON.stringify({ query }),
  });
  expect(res.status).toBe(401);
});

test('claims named like Postgres settings change nothing', async () => {
  const token = sign({ role: 'sheratan_app', tenant: 'acme', statement_timeout: '1', search_path: 'evil', 'jwt.claims.tenant': 'other' });
  const res = await h.graphql(query, { token });
  expect(res.status).toBe(200);
  expect(res.body.errors).toBeUndefined();
  const created = await h.graphql<{ createDocument: { document: { tenant: string } } }>(
    'mutation { createDocument(input: { document: { title: "x" } }) { document { tenant } } }',
    { token },
  );
  expect(created.body.data!.createDocument.document.tenant).toBe('acme');
});

test('no token is anonymous and reads nothing: "authentication required", 401', async () => {
  const res = await h.graphql(query, { token: null });
  expect(res.status).toBe(401);
  expect(res.body.data).toBeUndefined();
  expect(res.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  expect(res.body.errors?.[0]?.message).toMatch(/^authentication required/);
});

test('JWT_AUDIENCE is enforced when set', async () => {
  const other = await startHarness({ JWT_AUDIENCE: 'sheratan-api' });
  try {
    const wrong = sign({ role: 'sheratan_app', tenant: 'acme' }, other.config.jwtSecret!, { audience: 'elsewhere' });
    expect((await other.graphql(query, { token: wrong })).status).toBe(401);
    const right = sign({ role: 'sheratan_app', tenant: 'acme' }, other.config.jwtSecret!, { audience: 'sheratan-api' });
    expect((await other.graphql(query, { token: right })).status).toBe(200);
  } finally {
    await other.stop();
  }
});

test('the settings a request gets are exactly role, statement_timeout and the three claims', () => {
  const claims = { role: 'sheratan_readonly' as const, tenant: 'acme', sub: 'u1' };
  expect(pgSettingsFor(claims, { statementTimeoutMs: 2500 })).toEqual({
    role: 'sheratan_readonly',
    statement_timeout: '2500ms',
    'jwt.claims.role': 'sheratan_readonly',
    'jwt.claims.tenant': 'acme',
    'jwt.claims.sub': 'u1',
  });
  expect(pgSettingsFor(null, { statementTimeoutMs: 10 }).role).toBe('sheratan_anonymous');
  expect(pgSettingsFor({ ...claims, role: 'sheratan_app' }, { statementTimeoutMs: 10 }, 'sheratan_readonly').role).toBe('sheratan_readonly');
});

test('npm run token prints a token the gateway accepts, with the given claims', () => {
  const result = spawnSync(
    process.execPath,
    [path.join(projectRoot, 'src/cli.ts'), 'token', '--role', 'sheratan_readonly', '--tenant', 'acme', '--sub', 'me'],
    { env: { ...process.env, ...h.cliEnv }, encoding: 'utf8', timeout: 30_000 },
  );
  expect(result.status).toBe(0);
  const token = result.stdout.trim();
  const claims = jwt.verify(token, secret()) as jwt.JwtPayload;
  expect(claims).toMatchObject({ role: 'sheratan_readonly', tenant: 'acme', sub: 'me' });
  expect(claims.exp! - claims.iat!).toBe(12 * 3600);
});

test('npm run token refuses an expiry beyond JWT_MAX_LIFETIME, naming it', () => {
  const result = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'token', '--tenant', 'acme', '--expires', '7d'], {
    env: { ...process.env, ...h.cliEnv },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(result.status).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim()).toBe(
    'sheratan: a token may live at most JWT_MAX_LIFETIME (86400 s), not 604800 s: choose a shorter expiry or raise JWT_MAX_LIFETIME',
  );
});

test('npm run token refuses a role outside the allow-list', () => {
  const result = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'token', '--role', 'postgres', '--tenant', 'acme'], {
    env: { ...process.env, ...h.cliEnv, LOG_LEVEL: 'info' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(result.status).toBe(1);
  expect(result.stderr.trim()).toBe('sheratan: --role must be one of sheratan_app, sheratan_readonly');
});

test('each request runs with statement_timeout from config, whatever the token says', async () => {
  // A trigger (installed by the owner for this test) records the settings the insert ran with.
  const owner = await h.owner();
  await owner.query(`
    create function sheratan_private.test_record_settings() returns trigger language plpgsql as $$
    begin
      new.metadata := new.metadata || jsonb_build_object(
        'statement_timeout', current_setting('statement_timeout'),
        'search_path', current_setting('search_path'),
        'role', current_user);
      return new;
    end $$;
    create trigger _050_test_record_settings before insert on sheratan.documents
      for each row execute procedure sheratan_private.test_record_settings();`);
  try {
    const token = sign({ role: 'sheratan_app', tenant: 'acme', statement_timeout: '1', search_path: 'evil' });
    const res = await h.graphql<{ createDocument: { document: { metadata: Record<string, string> } } }>(
      'mutation { createDocument(input: { document: { title: "settings" } }) { document { metadata } } }',
      { token },
    );
    expect(res.body.data!.createDocument.document.metadata).toMatchObject({
      statement_timeout: `${h.config.statementTimeoutMs / 1000}s`,
      role: 'sheratan_app',
    });
    expect(res.body.data!.createDocument.document.metadata.search_path).not.toMatch(/evil/);
  } finally {
    await owner.query('drop trigger _050_test_record_settings on sheratan.documents; drop function sheratan_private.test_record_settings()');
  }
});

test('JWT_MAX_AGE lets tokens without exp in while they are younger than it, and bounds every token by its issue time', async () => {
  const aged = await startHarness({ JWT_MAX_AGE: '60' });
  try {
    const key = aged.config.jwtSecret!;
    const fresh = jwt.sign({ role: 'sheratan_app', tenant: 'acme' }, key);
    expect((await aged.graphql(query, { token: fresh })).status).toBe(200);
    const old = jwt.sign({ role: 'sheratan_app', tenant: 'acme', iat: Math.floor(Date.now() / 1000) - 300 }, key, { expiresIn: '1h' });
    const res = await aged.graphql(query, { token: old });
    expect(res.status).toBe(401);
    expect(res.body.errors?.[0]?.message).toBe('the token was issued more than 60 seconds ago (its "iat" claim; JWT_MAX_AGE)');
  } finally {
    await aged.stop();
  }
});

// The time claims, as a class: every combination of iat, exp and nbf drawn
// from the shapes a token can carry (missing, past, now, future, beyond the
// maximum lifetime, year 9999, and values that are not whole seconds), signed
// by hand (jsonwebtoken's sign refuses some of them), sent over HTTP, and
// judged against the rule written out here independently of auth.ts.
describe('the time claims against their rule, every combination, through HTTP', () => {
  const SKEW = 60;
  const LIFETIME = 24 * 3600;
  const MAX_AGE = 3600;
  const YEAR_9999 = 253402300799;
  const SHAPES: ReadonlyArray<[string, ((now: number) => unknown) | undefined]> = [
    ['missing', undefined],
    ['two hours ago', (now) => now - 7200],
    ['ten minutes ago', (now) => now - 600],
    ['now', (now) => now],
    ['in ten minutes', (now) => now + 600],
    ['beyond the lifetime', (now) => now + LIFETIME + SKEW + 600],
    ['year 9999', () => YEAR_9999],
    ['a string', (now) => String(now + 600)],
    ['1e300', () => 1e300],
    ['negative', () => -5],
    ['fractional', (now) => now + 600.5],
    ['null', () => null],
  ];
  const CLAIMS = ['iat', 'exp', 'nbf'] as const;

  /** The claims a token breaks (empty: accepted): the README's rule, stated directly. */
  function broken(claims: Record<string, unknown>, now: number, maxAge: number | undefined): Set<string> {
    const bad = new Set<string>();
    const seconds: Record<string, number> = {};
    for (const name of CLAIMS) {
      if (!(name in claims)) continue;
      const v = claims[name];
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER) seconds[name] = v;
      else bad.add(name);
    }
    const { iat, exp, nbf } = seconds;
    if (iat !== undefined && iat > now + SKEW) bad.add('iat'); // issued in the future
    if (nbf !== undefined && nbf > now + SKEW) bad.add('nbf'); // not valid yet
    if (exp !== undefined && (exp + SKEW <= now || exp > now + LIFETIME + SKEW)) bad.add('exp'); // expired, or lives too long
    if (maxAge !== undefined) {
      if (!('iat' in claims)) bad.add('iat');
      else if (iat !== undefined && now - iat >= maxAge + SKEW) bad.add('iat'); // too old
    } else if (!('exp' in claims)) bad.add('exp'); // would never expire
    return bad;
  }

  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signRaw = (payload: object, key: string): string => {
    const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
    return `${unsigned}.${createHmac('sha256', key).update(unsigned).digest('base64url')}`;
  };

  async function sweep(target: Harness, maxAge: number | undefined): Promise<{ accepted: number; refused: number }> {
    const combos: Array<Array<[string, ((now: number) => unknown) | undefined]>> = [[]];
    for (let i = 0; i < CLAIMS.length; i++) combos.splice(0, combos.length, ...combos.flatMap((c) => SHAPES.map((s) => [...c, s])));
    let accepted = 0;
    let refused = 0;
    const failures: string[] = [];
    for (let i = 0; i < combos.length; i += 12) {
      await Promise.all(
        combos.slice(i, i + 12).map(async (combo) => {
          const now = Math.floor(Date.now() / 1000);
          const claims: Record<string, unknown> = { role: 'sheratan_app', tenant: 'acme' };
          combo.forEach(([, make], k) => {
            if (make) claims[CLAIMS[k]!] = make(now);
          });
          const expected = broken(claims, now, maxAge);
          const res = await target.graphql<{ __typename: string }>('{ __typename }', { token: signRaw(claims, target.config.jwtSecret!) });
          const label = combo.map(([name], k) => `${CLAIMS[k]} ${name}`).join(', ');
          const error = res.body.errors?.[0];
          if (expected.size === 0) {
            accepted++;
            if (res.status !== 200 || res.body.data?.__typename !== 'Query')
              failures.push(`${label}: expected acceptance, got ${res.status} ${error?.message}`);
          } else {
            refused++;
            const named = [...expected].some((claim) => error?.message.includes(`"${claim}"`));
            const code = error?.extensions?.code;
            if (res.status !== 401 || !named || (code !== 'INVALID_TOKEN' && code !== 'TOKEN_EXPIRED')) {
              failures.push(`${label}: expected 401 naming one of ${[...expected].join('/')}, got ${res.status} ${code} ${error?.message}`);
            }
          }
        }),
      );
    }
    expect(failures).toEqual([]);
    return { accepted, refused };
  }

  test('without JWT_MAX_AGE: exp required, at most JWT_MAX_LIFETIME ahead; iat not in the future; nbf honoured', async () => {
    const { accepted, refused } = await sweep(h, undefined);
    expect(accepted).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(1000);
  }, 120_000);

  test('with JWT_MAX_AGE: iat required and recent, and stands in for a missing exp', async () => {
    const aged = await startHarness({ JWT_MAX_AGE: String(MAX_AGE) });
    try {
      const { accepted, refused } = await sweep(aged, MAX_AGE);
      expect(accepted).toBeGreaterThan(20);
      expect(refused).toBeGreaterThan(1000);
    } finally {
      await aged.stop();
    }
  }, 180_000);
});

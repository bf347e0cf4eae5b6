// A Bearer JWT (HS256) verified: the signature, the algorithm, the audience,
// our rules for the time claims, and the claims that become a request's
// settings (role, tenant, sub). Nothing from the token reaches Postgres except
// through the fixed keys of graphql-context.ts.
import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Config } from '../config/config.ts';
import { API_ROLES, isClaimText, type ApiRole } from '../config/roles.ts';

export interface Claims {
  role: ApiRole;
  tenant: string;
  sub: string | undefined;
}

export type AuthResult = { ok: true; claims: Claims | null } | { ok: false; status: 401 | 403; code: string; message: string };

// One key object per secret: building it from the string costs more than the HMAC itself.
const keys = new Map<string, KeyObject>();
const keyFor = (secret: string): KeyObject => {
  let key = keys.get(secret);
  if (!key) keys.set(secret, (key = createSecretKey(Buffer.from(secret, 'utf8'))));
  return key;
};

const deny = (status: 401 | 403, code: string, message: string): AuthResult => ({ ok: false, status, code, message });

/** What authentication reads of the configuration. */
export type AuthConfig = Pick<Config, 'jwtSecret' | 'jwtAudience' | 'jwtMaxAgeS' | 'jwtMaxLifetimeS' | 'jwtClockSkewS'>;

type TimeClaim = 'exp' | 'nbf' | 'iat';

/** A NumericDate as this gateway takes one: whole seconds since 1970, exactly representable (1e300, 1.5, -1, "1" are not). */
const isSeconds = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/**
 * The time claims against the clock (`now`, whole seconds), with
 * JWT_CLOCK_SKEW of slack for the issuer's clock on every comparison:
 * `exp`, `nbf` and `iat` are whole seconds when present; `iat` is not in the
 * future; `nbf` has come; `exp` has not passed and is at most
 * JWT_MAX_LIFETIME ahead; with JWT_MAX_AGE, `iat` is required and at most that
 * old (and stands in for a missing `exp`: JWT_MAX_AGE is at most
 * JWT_MAX_LIFETIME); without it, `exp` is required. Each refusal names the claim.
 */
export function checkTokenTimes(
  payload: Record<string, unknown>,
  now: number,
  config: Pick<Config, 'jwtMaxAgeS' | 'jwtMaxLifetimeS' | 'jwtClockSkewS'>,
): AuthResult | null {
  const skew = config.jwtClockSkewS;
  for (const claim of ['exp', 'nbf', 'iat'] as const satisfies readonly TimeClaim[]) {
    const value = payload[claim];
    if (value !== undefined && !isSeconds(value)) {
      return deny(401, 'INVALID_TOKEN', `the token's "${claim}" claim must be a whole number of seconds since 1970 (an integer from 0 to 2^53-1)`);
    }
  }
  const { exp, nbf, iat } = payload as Partial<Record<TimeClaim, number>>;
  if (iat !== undefined && iat > now + skew) {
    return deny(401, 'INVALID_TOKEN', `the token's "iat" claim is in the future (more than JWT_CLOCK_SKEW, ${skew} s, ahead of this server's clock)`);
  }
  if (nbf !== undefined && nbf > now + skew) return deny(401, 'INVALID_TOKEN', 'the token is not valid yet (its "nbf" claim is in the future)');
  if (exp !== undefined && now >= exp + skew) return deny(401, 'TOKEN_EXPIRED', 'the token has expired (its "exp" claim has passed)');
  if (exp !== undefined && exp > now + config.jwtMaxLifetimeS + skew) {
    return deny(
      401,
      'INVALID_TOKEN',
      `the token's "exp" claim is more than JWT_MAX_LIFETIME (${config.jwtMaxLifetimeS} s) ahead: tokens may live at most that long`,
    );
  }
  if (config.jwtMaxAgeS !== undefined) {
    if (iat === undefined) return deny(401, 'INVALID_TOKEN', 'the token must carry an "iat" claim (JWT_MAX_AGE bounds tokens by their issue time)');
    if (now >= iat + config.jwtMaxAgeS + skew) {
      return deny(401, 'TOKEN_EXPIRED', `the token was issued more than ${config.jwtMaxAgeS} seconds ago (its "iat" claim; JWT_MAX_AGE)`);
    }
  } else if (exp === undefined) {
    // A token that never expires is a password that cannot be changed.
    return deny(401, 'INVALID_TOKEN', 'the token must carry an "exp" claim (tokens that never expire are refused; see JWT_MAX_AGE)');
  }
  return null;
}

/** Verifies the Authorization header; no header means anonymous. `now`: the clock, in milliseconds. */
export function authenticate(header: string | undefined, config: AuthConfig, now = Date.now()): AuthResult {
  if (header === undefined || header === '') return { ok: true, claims: null };
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) return deny(401, 'INVALID_AUTHORIZATION', 'the Authorization header must be "Bearer <token>"');
  if (!config.jwtSecret) return deny(401, 'INVALID_TOKEN', 'this server accepts no tokens: JWT_SECRET is not set');
  let payload: jwt.JwtPayload;
  try {
    // jsonwebtoken checks the signature, the algorithm and the audience; the
    // time claims are ours (checkTokenTimes): its own checks take any number
    // (1e300, fractions) and know no maximum lifetime.
    const decoded = jwt.verify(match[1]!, keyFor(config.jwtSecret), {
      algorithms: ['HS256'],
      ignoreExpiration: true,
      ignoreNotBefore: true,
      ...(config.jwtAudience ? { audience: config.jwtAudience } : {}),
    });
    if (typeof decoded === 'string' || decoded === null || typeof decoded !== 'object' || Array.isArray(decoded)) {
      return deny(401, 'INVALID_TOKEN', 'the token payload must be a JSON object');
    }
    payload = decoded;
  } catch (err) {
    const reason = (err as Error).message;
    return deny(401, 'INVALID_TOKEN', `the token is invalid: ${reason}`);
  }
  const refused = checkTokenTimes(payload as Record<string, unknown>, Math.floor(now / 1000), config);
  if (refused) return refused;
  const { role, tenant, sub } = payload as Record<string, unknown>;
  if (typeof role !== 'string' || !(API_ROLES as readonly string[]).includes(role)) {
    return deny(403, 'FORBIDDEN_ROLE', `the token's role must be one of ${API_ROLES.join(', ')}`);
  }
  if (typeof tenant !== 'string' || tenant.length === 0 || !isClaimText(tenant)) {
    return deny(401, 'INVALID_TOKEN', 'the token must carry a "tenant" claim (a non-empty string of at most 200 characters, without control characters)');
  }
  if (sub !== undefined && (typeof sub !== 'string' || !isClaimText(sub))) {
    return deny(401, 'INVALID_TOKEN', 'the token\'s "sub" claim must be a string of at most 200 characters, without control characters');
  }
  return { ok: true, claims: { role: role as ApiRole, tenant, sub } };
}

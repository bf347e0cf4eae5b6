// Who may see the operator page: the holder of an admin token, a JWT signed
// with ADMIN_JWT_SECRET (never JWT_SECRET: config.ts refuses the same key),
// audience `sheratan-admin`, claim `admin: true`, with the API tokens' time
// rules (exp required, at most JWT_MAX_LIFETIME ahead). `npm run token --
// --admin` issues one. A tenant's token, no token or a wrong one gets a
// 401/403 and nothing of the page.
//
// The token comes as `Authorization: Bearer <token>` (curl, scripts) or as
// the password of HTTP Basic authentication, so that a browser asks for it
// itself (any user name) and sends it again with the page's live updates:
// the page needs no login form, cookie or script of its own to authenticate.
import { createSecretKey } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Config } from '../config/config.ts';
import { isClaimText } from '../config/roles.ts';
import { checkTokenTimes } from '../http/token-verification.ts';
import { withinLifetime } from '../http/token-signing.ts';

export const ADMIN_AUDIENCE = 'sheratan-admin';

export type AdminAuth = { ok: true; sub: string | undefined } | { ok: false; status: 401 | 403; code: string; message: string };

type AdminAuthConfig = Pick<Config, 'adminJwtSecret' | 'jwtMaxAgeS' | 'jwtMaxLifetimeS' | 'jwtClockSkewS'>;

const refuse = (status: 401 | 403, code: string, message: string): AdminAuth => ({ ok: false, status, code, message });

/** The token of an Authorization header: Bearer's, or Basic's password. */
function tokenOf(header: string): string | null {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1]!;
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!basic) return null;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1).trim() : null;
}

/** Checks a request's Authorization header against ADMIN_JWT_SECRET. `now` in milliseconds. */
export function authenticateAdmin(header: string | undefined, config: AdminAuthConfig, now = Date.now()): AdminAuth {
  if (!config.adminJwtSecret) return refuse(403, 'ADMIN_DISABLED', 'the operator page is off: ADMIN_JWT_SECRET is not set');
  if (!header)
    return refuse(
      401,
      'ADMIN_TOKEN_REQUIRED',
      'the operator page needs an admin token (npm run token -- --admin), as a Bearer token or as the password of Basic authentication',
    );
  const token = tokenOf(header);
  if (!token)
    return refuse(401, 'INVALID_AUTHORIZATION', 'the Authorization header must be "Bearer <admin token>" or Basic with the admin token as the password');
  let payload: jwt.JwtPayload;
  try {
    const decoded = jwt.verify(token, createSecretKey(Buffer.from(config.adminJwtSecret, 'utf8')), {
      algorithms: ['HS256'],
      audience: ADMIN_AUDIENCE,
      ignoreExpiration: true,
      ignoreNotBefore: true,
    });
    if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded))
      return refuse(401, 'INVALID_ADMIN_TOKEN', 'the admin token payload must be a JSON object');
    payload = decoded;
  } catch (err) {
    // A tenant's token (signed with JWT_SECRET) ends here: its signature does not verify under the admin key.
    return refuse(401, 'INVALID_ADMIN_TOKEN', `not an admin token: ${(err as Error).message}`);
  }
  const times = checkTokenTimes(payload as Record<string, unknown>, Math.floor(now / 1000), config);
  if (times && !times.ok) return refuse(401, times.code, times.message);
  if (payload.admin !== true) return refuse(403, 'NOT_ADMIN', 'the token does not carry "admin": true');
  const sub = payload.sub;
  if (sub !== undefined && (typeof sub !== 'string' || !isClaimText(sub)))
    return refuse(401, 'INVALID_ADMIN_TOKEN', 'the admin token\'s "sub" claim must be a string of at most 200 characters');
  return { ok: true, sub };
}

/** An admin token for `npm run token -- --admin`. */
export function signAdminToken(secret: string, options: { sub?: string; expiresIn?: string | number; maxLifetimeS?: number }): string {
  const token = jwt.sign({ admin: true, ...(options.sub ? { sub: options.sub } : {}) }, secret, {
    algorithm: 'HS256',
    audience: ADMIN_AUDIENCE,
    expiresIn: (options.expiresIn ?? '1h') as jwt.SignOptions['expiresIn'],
  });
  return withinLifetime(token, options.maxLifetimeS);
}

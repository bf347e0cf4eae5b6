// Tokens minted for `npm run token` and the tests: HS256, with the claims the
// gateway verifies (token-verification.ts) and its lifetime rule applied at
// signing, so a token it would refuse is never handed out.
import jwt from 'jsonwebtoken';
import type { ApiRole } from '../config/roles.ts';

export interface TokenOptions {
  role: ApiRole;
  tenant: string;
  sub?: string;
  /** Default 12h, within JWT_MAX_LIFETIME's default (24h). */
  expiresIn?: string | number;
  audience?: string;
  /** JWT_MAX_LIFETIME: a longer `expiresIn` is refused here rather than by the gateway later. */
  maxLifetimeS?: number;
}

export function signToken(secret: string, options: TokenOptions): string {
  const payload: Record<string, string> = { role: options.role, tenant: options.tenant };
  if (options.sub) payload.sub = options.sub;
  const token = jwt.sign(payload, secret, {
    algorithm: 'HS256',
    expiresIn: (options.expiresIn ?? '12h') as jwt.SignOptions['expiresIn'],
    ...(options.audience ? { audience: options.audience } : {}),
  });
  return withinLifetime(token, options.maxLifetimeS);
}

/** `token`, unless it lives longer than JWT_MAX_LIFETIME (`maxLifetimeS`), which is refused here rather than by the gateway later. */
export function withinLifetime(token: string, maxLifetimeS: number | undefined): string {
  if (maxLifetimeS === undefined) return token;
  const { exp, iat } = jwt.decode(token) as { exp: number; iat: number };
  if (exp - iat > maxLifetimeS) {
    throw new RangeError(
      `a token may live at most JWT_MAX_LIFETIME (${maxLifetimeS} s), not ${exp - iat} s: choose a shorter expiry or raise JWT_MAX_LIFETIME`,
    );
  }
  return token;
}

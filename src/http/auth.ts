// Request authentication: a Bearer JWT (HS256) becomes the transaction-local
// settings PostGraphile applies before every query. Nothing from the token
// reaches Postgres except through the fixed keys below.
import { createSecretKey, type KeyObject } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import jwt from 'jsonwebtoken';
import type { Config } from '../config/config.ts';
import { ANONYMOUS_ROLE, API_ROLES, isClaimText, type ApiRole } from '../config/roles.ts';
import { requestState } from './request-state.ts';

export { API_ROLES, type ApiRole };

export interface Claims {
  role: ApiRole;
  tenant: string;
  sub: string | undefined;
}

export type AuthResult =
  | { ok: true; claims: Claims | null }
  | { ok: false; status: 401 | 403; code: string; message: string };

// One key object per secret: building it from the string costs more than the HMAC itself.
const keys = new Map<string, KeyObject>();
const keyFor = (secret: string): KeyObject => {
  let key = keys.get(secret);
  if (!key) keys.set(secret, (key = createSecretKey(Buffer.from(secret, 'utf8'))));
  return key;
};

const deny = (status: 401 | 403, code: string, message: string): AuthResult => ({ ok: false, status, code, message });

/** Verifies the Authorization header; no header means anonymous. */
export function authenticate(header: string | undefined, config: Pick<Config, 'jwtSecret' | 'jwtAudience' | 'jwtMaxAgeS'>): AuthResult {
  if (header === undefined || header === '') return { ok: true, claims: null };
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) return deny(401, 'INVALID_AUTHORIZATION', 'the Authorization header must be "Bearer <token>"');
  if (!config.jwtSecret) return deny(401, 'INVALID_TOKEN', 'this server accepts no tokens: JWT_SECRET is not set');
  let payload: jwt.JwtPayload;
  try {
    const decoded = jwt.verify(match[1]!, keyFor(config.jwtSecret), {
      algorithms: ['HS256'],
      ...(config.jwtAudience ? { audience: config.jwtAudience } : {}),
      // With JWT_MAX_AGE, a token is also refused once it was issued that long ago.
      ...(config.jwtMaxAgeS ? { maxAge: config.jwtMaxAgeS } : {}),
    });
    if (typeof decoded === 'string') return deny(401, 'INVALID_TOKEN', 'the token payload must be a JSON object');
    payload = decoded;
    // A token that never expires is a password that cannot be changed: refuse
    // it, unless JWT_MAX_AGE bounds its life by its issue time instead.
    if (typeof payload.exp !== 'number' && !(config.jwtMaxAgeS && typeof payload.iat === 'number')) {
      return deny(401, 'INVALID_TOKEN', config.jwtMaxAgeS ? 'the token must carry "exp" or "iat"' : 'the token must carry an "exp" claim (tokens that never expire are refused; see JWT_MAX_AGE)');
    }
  } catch (err) {
    if (err instanceof jwt.TokenExpiredError) {
      return deny(401, 'TOKEN_EXPIRED', err.message === 'maxAge exceeded' ? `the token was issued more than ${config.jwtMaxAgeS} seconds ago (JWT_MAX_AGE)` : 'the token has expired');
    }
    if (err instanceof jwt.NotBeforeError) return deny(401, 'INVALID_TOKEN', 'the token is not valid yet');
    const reason = (err as Error).message;
    return deny(401, 'INVALID_TOKEN', `the token is invalid: ${reason}`);
  }
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

/**
 * The settings for one request's transaction. `role` is one of our three API
 * roles (never a value from the token unchecked); claims go under `jwt.claims.`
 * so no claim can name a real Postgres setting.
 */
export function pgSettingsFor(
  claims: Claims | null,
  config: Pick<Config, 'statementTimeoutMs'>,
  forceRole?: ApiRole,
): Record<string, string> {
  const role = claims ? (forceRole ?? claims.role) : ANONYMOUS_ROLE;
  return {
    role,
    statement_timeout: `${config.statementTimeoutMs}ms`,
    'jwt.claims.role': role,
    'jwt.claims.tenant': claims?.tenant ?? '',
    'jwt.claims.sub': claims?.sub ?? '',
  };
}

export interface TokenOptions {
  role: ApiRole;
  tenant: string;
  sub?: string;
  expiresIn?: string | number;
  audience?: string;
}

export function signToken(secret: string, options: TokenOptions): string {
  const payload: Record<string, string> = { role: options.role, tenant: options.tenant };
  if (options.sub) payload.sub = options.sub;
  return jwt.sign(payload, secret, {
    algorithm: 'HS256',
    expiresIn: (options.expiresIn ?? '12h') as jwt.SignOptions['expiresIn'],
    ...(options.audience ? { audience: options.audience } : {}),
  });
}

/** Rejects bad tokens with 401/403 before any GraphQL work; keeps the claims in the request's state otherwise. */
export function authenticationMiddleware(config: Pick<Config, 'jwtSecret' | 'jwtAudience' | 'jwtMaxAgeS'>) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const result = authenticate(req.headers.authorization, config);
    if (!result.ok) {
      res
        .status(result.status)
        .set('WWW-Authenticate', `Bearer error="invalid_token"`)
        .json({ errors: [{ message: result.message, extensions: { code: result.code } }] });
      return;
    }
    const state = requestState(req);
    if (state) state.claims = result.claims;
    next();
  };
}

/**
 * grafast's `context` for an endpoint: the one place where a request's claims
 * become its pgSettings (with `extraSettings`, the ANN accuracy settings),
 * beside the facts for its log line. `forceRole`: the endpoint's role
 * whatever the token names (reporting). A request with no state (none the
 * HTTP layer saw) runs as the anonymous role.
 */
export function graphqlContext(config: Pick<Config, 'statementTimeoutMs'>, extraSettings: Record<string, string>, forceRole?: ApiRole) {
  return (requestContext: Partial<Grafast.RequestContext>): Partial<Grafast.Context> => {
    const state = requestContext.node && requestState(requestContext.node.req);
    return {
      pgSettings: { ...extraSettings, ...pgSettingsFor(state?.claims ?? null, config, forceRole) },
      ...(state ? { sheratanFacts: state.facts } : {}),
    };
  };
}

// The HTTP layer's authentication: a request's Bearer token verified before
// any GraphQL work, its claims kept in the request's state for the context.
import type { NextFunction, Request, Response } from 'express';
import { requestState } from './request-state.ts';
import { authenticate, type AuthConfig } from './token-verification.ts';

/** Rejects bad tokens with 401/403 before any GraphQL work; keeps the claims in the request's state otherwise. */
export function authenticationMiddleware(config: AuthConfig) {
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

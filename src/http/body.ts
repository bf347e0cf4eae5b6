// A GraphQL request's body, read before the request may take a database pool
// slot (admission.ts), with two bounds decided from its headers alone:
//   - its size: MAX_BODY_BYTES with a token, MAX_ANONYMOUS_BODY_BYTES without
//     one (a request without a token can only send a query: the anonymous
//     role may read nothing but the schema), refused from Content-Length
//     before a byte is read, or as soon as the bytes pass it;
//   - its time: the whole body within BODY_TIMEOUT_MS of the headers, so a
//     client trickling its body holds neither a slot nor its socket for long.
// grafserv then takes the bytes from `req.body` instead of reading the socket.
import { AsyncResource } from 'node:async_hooks';
import type { NextFunction, Request, Response } from 'express';
import type { Config } from '../config/config.ts';
import { requestState } from './request-state.ts';

type BodyLimits = Pick<Config, 'maxBodyBytes' | 'maxAnonymousBodyBytes' | 'bodyTimeoutMs'>;

/** The error answer for a body the gateway will not read further; the connection closes after it. */
function refuse(req: Request, res: Response, status: 408 | 413, code: string, message: string): void {
  if (res.headersSent) return;
  res
    .set('Connection', 'close')
    .status(status)
    .json({ errors: [{ message, extensions: { code } }] });
  // Whatever else the client sends is not read: the socket goes once the answer is out.
  res.once('finish', () => req.socket.destroy());
}

export function bodyMiddleware(limits: BodyLimits) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method !== 'POST' || req.body !== undefined) {
      next();
      return;
    }
    const anonymous = !requestState(req)?.claims;
    const limit = anonymous ? Math.min(limits.maxAnonymousBodyBytes, limits.maxBodyBytes) : limits.maxBodyBytes;
    const setting = anonymous ? 'MAX_ANONYMOUS_BODY_BYTES' : 'MAX_BODY_BYTES';
    const tooLarge = (): void =>
      refuse(req, res, 413, 'BODY_TOO_LARGE', `the request body is larger than ${limit} bytes (${setting}${anonymous ? ': send a token to send more' : ''})`);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      tooLarge();
      return;
    }
    // The socket's events run outside this request's async context (its request id for the logs): carry it on.
    const proceed = AsyncResource.bind(() => next());
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (): void => {
      done = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        finish();
        chunks.length = 0;
        req.pause();
        tooLarge();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      finish();
      req.body = Buffer.concat(chunks, size);
      proceed();
    };
    const onError = (): void => {
      finish();
      chunks.length = 0;
    };
    const timer = setTimeout(() => {
      if (done) return;
      finish();
      chunks.length = 0;
      req.pause();
      refuse(req, res, 408, 'BODY_TIMEOUT', `the request body did not arrive within ${limits.bodyTimeoutMs} ms (BODY_TIMEOUT_MS)`);
    }, limits.bodyTimeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  };
}

// The operator page's routes on the gateway's express app: GET /admin (the
// page) and GET /admin/live (its live figures as server-sent events). Off
// unless ADMIN_JWT_SECRET is set: then nothing is mounted and /admin is a 404
// like any unknown path. Every request is checked first (auth.ts); one that
// fails gets its status and error code, never a byte of the page, and no
// database is touched for it.
import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Config } from '../config/config.ts';
import { log } from '../config/log.ts';
import type { Database } from '../database/connect.ts';
import type { Gateway } from '../http/gateway.ts';
import { authenticateAdmin } from './auth.ts';
import { createAdminData } from './data.ts';
import { ADMIN_LIVE_PATH, ADMIN_PATH, renderPage, WINDOWS } from './page.ts';

/** How often the live figures are read and sent. */
export const LIVE_INTERVAL_MS = 2000;
/** Live streams open at once (an operator's tabs, not a public audience). */
const MAX_LIVE_STREAMS = 20;
const MAX_HOURS: number = WINDOWS[WINDOWS.length - 1]!;

function refuse(res: Response, status: number, code: string, message: string): void {
  if (status === 401) res.set('WWW-Authenticate', 'Basic realm="Sheratan operator page", charset="UTF-8"');
  res.status(status).json({ errors: [{ message, extensions: { code } }] });
}

/** The admin check every route makes before it reads anything. */
function admitted(req: Request, res: Response, config: Config): boolean {
  const auth = authenticateAdmin(req.get('authorization'), config);
  if (auth.ok) return true;
  refuse(res, auth.status, auth.code, auth.message);
  return false;
}

/** ?hours=: a whole number of hours from 1 to 720 (default 24). */
function windowHours(raw: unknown): number | string {
  if (raw === undefined) return 24;
  if (typeof raw !== 'string' || !/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_HOURS) {
    return `hours must be a whole number of hours from 1 to ${MAX_HOURS}`;
  }
  return Number(raw);
}

/**
 * Mounts the page on `gateway` when ADMIN_JWT_SECRET is set; returns what
 * closes its pool and streams (startGateway's `stop` calls it), or nothing.
 */
export function mountAdminPage(gateway: Gateway, db: Database, config: Config): (() => Promise<void>) | undefined {
  if (!config.adminJwtSecret) return undefined;
  const data = createAdminData(config, db);
  const streams = new Set<Response>();

  gateway.app.get(ADMIN_PATH, async (req, res) => {
    if (!admitted(req, res, config)) return;
    const hours = windowHours(req.query.hours);
    if (typeof hours === 'string') return refuse(res, 400, 'ADMIN_BAD_WINDOW', hours);
    try {
      const [analytics, live, checks] = await Promise.all([data.analytics(hours), data.live(), data.doctor()]);
      const nonce = randomBytes(16).toString('base64');
      res
        .set({
          'Content-Security-Policy': `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
          'X-Frame-Options': 'DENY',
          'Referrer-Policy': 'no-referrer',
        })
        .type('html')
        .send(renderPage({ backend: db.backend, hours, analytics, live, checks, nonce }));
    } catch (err) {
      log('error', 'the operator page could not be drawn', { error: (err as Error).message });
      refuse(res, 503, 'ADMIN_UNAVAILABLE', `the operator page could not read the database: ${(err as Error).message}`);
    }
  });

  gateway.app.get(ADMIN_LIVE_PATH, (req, res) => {
    if (!admitted(req, res, config)) return;
    if (streams.size >= MAX_LIVE_STREAMS)
      return refuse(res, 429, 'ADMIN_TOO_MANY_STREAMS', `at most ${MAX_LIVE_STREAMS} live streams of the operator page at once`);
    res.status(200).set({ 'Content-Type': 'text/event-stream', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    streams.add(res);
    let busy = false;
    const send = async (): Promise<void> => {
      // A read still running (a slow database) is not queued behind another.
      if (busy || res.writableEnded || res.destroyed) return;
      busy = true;
      try {
        // Read first, written only if the stream is still open by then.
        const figures = await data.live();
        if (!res.destroyed) res.write(`event: figures\ndata: ${JSON.stringify(figures)}\n\n`);
      } catch (err) {
        if (!res.destroyed) res.write(`event: problem\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
      } finally {
        busy = false;
      }
    };
    void send();
    const timer = setInterval(() => void send(), LIVE_INTERVAL_MS);
    res.on('close', () => {
      clearInterval(timer);
      streams.delete(res);
    });
  });

  return async () => {
    for (const res of streams) res.end();
    streams.clear();
    await data.close();
  };
}

// A request that could not have the database in time (error code
// DATABASE_BUSY, see error-mask.ts) is answered like one refused for an
// exhausted pool: HTTP 503 with Retry-After, so clients and load balancers
// back off and retry instead of treating it as a bad query. One that waited
// for maintenance (MAINTENANCE) gets 503 with the maintenance's Retry-After.
import { DATABASE_BUSY, MAINTENANCE } from './error-mask.ts';

const MARKERS = [DATABASE_BUSY, MAINTENANCE].map((code) => Buffer.from(`"code":"${code}"`));

interface Payload {
  errors?: Array<{ extensions?: { code?: unknown; retryAfter?: unknown } }>;
}

/** The Retry-After for a payload with a busy or maintenance error (seconds), or null. */
function retryAfter(payload: Payload | undefined): number | null {
  let seconds: number | null = null;
  for (const e of payload?.errors ?? []) {
    if (e.extensions?.code === MAINTENANCE && typeof e.extensions.retryAfter === 'number') seconds = Math.max(seconds ?? 0, e.extensions.retryAfter);
    else if (e.extensions?.code === DATABASE_BUSY) seconds = Math.max(seconds ?? 0, 1);
  }
  return seconds;
}

export const DatabaseBusyPlugin: GraphileConfig.Plugin = {
  name: 'SheratanDatabaseBusyPlugin',
  version: '1.0.0',
  description: 'HTTP 503 + Retry-After for requests that could not have the database in time, or waited for maintenance',
  grafserv: {
    middleware: {
      async processRequest(next) {
        const result = await next();
        if (!result || (result.type !== 'json' && result.type !== 'buffer')) return result;
        // (The marker is JSON our masking writes; a value containing it would be escaped.)
        const payload =
          result.type === 'json'
            ? (result.json as Payload)
            : MARKERS.some((m) => result.buffer.includes(m))
              ? (JSON.parse(result.buffer.toString('utf8')) as Payload)
              : undefined;
        const seconds = retryAfter(payload);
        if (seconds === null) return result;
        return { ...result, statusCode: 503, headers: { ...result.headers, 'retry-after': String(seconds) } };
      },
    },
  },
};

// A request that could not have the database in time (error code
// DATABASE_BUSY, see error-mask.ts) is answered like one refused for an
// exhausted pool: HTTP 503 with Retry-After, so clients and load balancers
// back off and retry instead of treating it as a bad query.
import { DATABASE_BUSY } from './error-mask.ts';

const MARKER = Buffer.from(`"code":"${DATABASE_BUSY}"`);

interface Payload {
  errors?: Array<{ extensions?: { code?: unknown } }>;
}

const busy = (payload: Payload | undefined): boolean => payload?.errors?.some((e) => e.extensions?.code === DATABASE_BUSY) ?? false;

export const DatabaseBusyPlugin: GraphileConfig.Plugin = {
  name: 'SheratanDatabaseBusyPlugin',
  version: '1.0.0',
  description: 'HTTP 503 + Retry-After for requests that could not have the database in time',
  grafserv: {
    middleware: {
      async processRequest(next) {
        const result = await next();
        if (!result || (result.type !== 'json' && result.type !== 'buffer')) return result;
        // (The marker is JSON our masking writes; a value containing it would be escaped.)
        const payload =
          result.type === 'json' ? (result.json as Payload) : result.buffer.includes(MARKER) ? (JSON.parse(result.buffer.toString('utf8')) as Payload) : undefined;
        if (!busy(payload)) return result;
        return { ...result, statusCode: 503, headers: { ...result.headers, 'retry-after': '1' } };
      },
    },
  },
};

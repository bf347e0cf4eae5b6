// What the benchmark's peers share: each is what a user would write instead
// of this store, started in its own process by bench/run.ts with
// DATABASE_URL (the authenticator's login), JWT_SECRET and PORT (0: any).
// Every request verifies its bearer token and runs its search as
// sheratan_app with the token's tenant and subject as transaction-local
// settings, so row-level security scopes it exactly as it scopes the
// gateway. None of them logs the search (the gateway does).
import type http from 'node:http';
import jwt from 'jsonwebtoken';
import pg from 'pg';

export const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_SIZE ?? 8) });
const secret = process.env.JWT_SECRET!;

/** The top-k query the peers run (the same as the benchmark's raw SQL, with the tenant left to RLS). */
export const SEARCH_SQL = 'select id, embedding <=> $1 as distance from sheratan.document_chunks order by embedding <=> $1 limit $2';

export interface Claims {
  tenant: string;
  sub: string;
}

/** The request's verified claims, or null. */
export function claimsOf(req: http.IncomingMessage): Claims | null {
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Bearer ')) return null;
  try {
    const c = jwt.verify(header.slice(7), secret, { algorithms: ['HS256'] }) as Claims & { role?: string };
    return c.role === 'sheratan_app' && typeof c.tenant === 'string' ? { tenant: c.tenant, sub: String(c.sub ?? '') } : null;
  } catch {
    return null;
  }
}

/** The search as a hand-written server runs it: begin, the role and claims, the query, commit. */
export async function search(claims: Claims, embedding: string, k: number): Promise<Array<{ id: string; distance: number }>> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query("select set_config('role', 'sheratan_app', true), set_config('jwt.claims.tenant', $1, true), set_config('jwt.claims.sub', $2, true)", [
      claims.tenant,
      claims.sub,
    ]);
    const { rows } = await client.query(SEARCH_SQL, [embedding, k]);
    await client.query('commit');
    return rows;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Reads a request's JSON body. */
export async function body(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
}

/** Listens on PORT and prints `listening <port>` for the benchmark. */
export function listen(server: http.Server): void {
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
  });
  process.on('SIGTERM', () => {
    server.close();
    void pool.end().finally(() => process.exit(0));
  });
}

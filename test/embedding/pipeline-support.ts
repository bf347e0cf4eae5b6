// The text pipeline's tests: a database migrated to head with the migration in
// progress (migrations/current.sql) applied before the gateway starts, so
// its schema has the pipeline's columns and functions (once current.sql is
// committed this changes nothing), and the gateway with a real provider.
import pg from 'pg';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { migrateWithCurrent } from '../support/current-migration.ts';
import { setLogLevel } from '../../src/config/log.ts';
import { startGateway, type RunningGateway } from '../../src/http/start.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { createTestDatabase, TEST_ENGINE_ENV, type TestDatabase } from '../support/backend.ts';

process.env.GRAPHILE_ENV ??= 'test';

export interface GraphQLAnswer<T> {
  status: number;
  body: { data?: T; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
}

export interface PipelineHarness {
  config: Config;
  gateway: RunningGateway;
  database: TestDatabase;
  token(tenant?: string): string;
  graphql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, tenant?: string): Promise<GraphQLAnswer<T>>;
  /** A query as the owner (sees every tenant). */
  sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  /** Resolves once `check` holds (polled), or fails after `timeoutMs`. */
  until(check: () => Promise<boolean>, timeoutMs?: number, what?: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startPipeline(env: Record<string, string> = {}): Promise<PipelineHarness> {
  const database = await createTestDatabase();
  const config = parseConfig({ ...database.env, ...TEST_ENGINE_ENV, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...env });
  setLogLevel(config.logLevel);
  let gateway: RunningGateway;
  try {
    await migrateWithCurrent(config);
    gateway = await startGateway(config, { port: 0 });
  } catch (err) {
    await database.drop();
    throw err;
  }
  const owner = new pg.Client(gateway.db.ownerUrl);
  owner.on('error', () => undefined);
  await owner.connect();
  const h: PipelineHarness = {
    config: gateway.config,
    gateway,
    database,
    token: (tenant = 'acme') => signToken(gateway.config.jwtSecret!, { role: 'sheratan_app', tenant, sub: 'alice' }),
    async graphql(query, variables, tenant) {
      const res = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${h.token(tenant)}` },
        body: JSON.stringify({ query, variables }),
      });
      const text = await res.text();
      let body: GraphQLAnswer<never>['body'];
      try {
        body = JSON.parse(text) as never;
      } catch {
        body = { errors: [{ message: text }] };
      }
      return { status: res.status, body };
    },
    async sql(text, values) {
      return (await owner.query(text, values)).rows;
    },
    async until(check, timeoutMs = 60_000, what = 'the condition') {
      const end = Date.now() + timeoutMs;
      for (;;) {
        if (await check()) return;
        if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      await owner.end().catch(() => undefined);
      await gateway.stop();
      await database.drop();
    },
  };
  return h;
}

export const INGEST = `mutation ($input: IngestDocumentInput!) {
  ingestDocument(input: $input) {
    document { rowId embeddingStatus embeddingError content
      chunks(first: 500, orderBy: CHUNK_INDEX_ASC) { nodes { chunkIndex content startOffset endOffset embeddingModel embedding } } }
  }
}`;

export interface IngestedDocument {
  rowId: string;
  embeddingStatus: 'PENDING' | 'EMBEDDED' | 'FAILED';
  embeddingError: string | null;
  content: string;
  chunks: {
    nodes: Array<{
      chunkIndex: number;
      content: string;
      startOffset: number | null;
      endOffset: number | null;
      embeddingModel: string | null;
      embedding: number[] | null;
    }>;
  };
}

/** The status of a document as the owner sees it. */
export async function statusOf(
  h: PipelineHarness,
  id: string,
): Promise<{ embedding_status: string; embedding_error: string | null; missing: number; chunks: number }> {
  const [row] = await h.sql<{ embedding_status: string; embedding_error: string | null; missing: string; chunks: string }>(
    `select d.embedding_status::text, d.embedding_error,
            (select count(*) from sheratan.document_chunks c where c.document_id = d.id and c.embedding is null) as missing,
            (select count(*) from sheratan.document_chunks c where c.document_id = d.id) as chunks
       from sheratan.documents d where d.id = $1`,
    [id],
  );
  return { embedding_status: row!.embedding_status, embedding_error: row!.embedding_error, missing: Number(row!.missing), chunks: Number(row!.chunks) };
}

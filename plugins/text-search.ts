// Search by text: `searchDocumentChunks(query: "…")` beside `embedding`
// (exactly one of the two), and `hybridSearchDocumentChunks(queryText: …)`
// embedding the same text for its vector side when no `embedding` is given.
// The text becomes a vector before the search's one statement, in a step of
// its own, through the embedder the gateway puts in the GraphQL context
// (`sheratanEmbedder`: the configured provider behind a bounded cache of query
// embeddings and the tenant's rate); plugins import nothing from src/. The
// search log says the query was text: its filters carry `"query": "text"`.
// A provider that fails answers an error naming it (no silent fallback to
// full-text ranking: a client asking for meaning should not get keywords).
import { GraphQLError, GraphQLString, getNullableType, type GraphQLFieldConfigArgumentMap } from 'graphql';
import { context, lambda, type ExecutableStep, type FieldArgs } from 'postgraphile/grafast';

/** What the gateway hands plugins to turn text into vectors (GraphQL context `sheratanEmbedder`). */
export interface SheratanEmbedder {
  /** Recorded on every chunk it embeds, e.g. 'local:use-lite-512'. */
  model: string;
  dimension: number;
  /** One query's vector, through the bounded cache (a hit costs no provider call). */
  embedQuery(text: string): Promise<number[]>;
  /** One vector per text, same order; all or nothing. */
  embedTexts(texts: string[]): Promise<number[][]>;
  /** The server's chunker (CHUNK_MAX_CHARS, CHUNK_OVERLAP_CHARS); offsets in UTF-16 code units. */
  chunkText(text: string): Array<{ index: number; content: string; start: number; end: number }>;
}

/** The text limits of this deployment (GraphQL context `sheratanTextLimits`). */
export interface SheratanTextLimits {
  /** MAX_DOCUMENT_CHARS: the largest text a document may bring to be chunked and embedded. */
  maxDocumentChars: number;
  /** EMBED_SYNC_MAX_CHARS: text embedded within an ingestDocument request; above it the document is PENDING. */
  embedSyncMaxChars: number;
}

declare global {
  namespace Grafast {
    interface Context {
      /** Turns text into vectors; absent with EMBEDDING_PROVIDER=none (clients bring vectors). */
      sheratanEmbedder?: SheratanEmbedder;
      sheratanTextLimits?: SheratanTextLimits;
    }
  }
}

/** A client's mistake in text it sent, as a GraphQL error with a code. */
export const textError = (message: string, code: string): GraphQLError => new GraphQLError(message, { extensions: { code } });

/**
 * A provider's failure as the client sees it: its message (which names the
 * provider, never its key) and code (EMBEDDING_PROVIDER_UNAVAILABLE,
 * EMBEDDING_RATE_LIMITED, …). Anything else is left for error masking.
 */
export function providerError(err: unknown): unknown {
  const e = err as { code?: unknown; message?: unknown; retryAfterMs?: unknown };
  if (err instanceof GraphQLError || typeof e?.code !== 'string' || !e.code.startsWith('EMBEDDING_')) return err;
  return new GraphQLError(String(e.message), {
    extensions: { code: e.code, ...(typeof e.retryAfterMs === 'number' ? { retryAfterMs: e.retryAfterMs } : {}) },
  });
}

/** Where text cannot go: Postgres text holds no NUL character. */
export function nulProblem(text: string, what: string): GraphQLError | null {
  const at = text.indexOf('\u0000');
  return at < 0 ? null : textError(`${what} contains a NUL character (U+0000) at position ${at}; PostgreSQL text cannot store it: remove it`, 'TEXT_HAS_NUL');
}

async function embedQueryText(ctx: Grafast.Context, text: string, field: string, argument: string, maxChars: number | undefined): Promise<number[]> {
  if (!/\S/.test(text)) throw textError(`${field}(${argument}) is empty or only whitespace: there is nothing to search for`, 'EMPTY_TEXT');
  if (maxChars !== undefined && text.length > maxChars) {
    throw textError(`${field}(${argument}) has ${text.length} characters, above the limit of ${maxChars} (MAX_QUERY_TEXT_LENGTH)`, 'QUERY_TEXT_TOO_LONG');
  }
  const nul = nulProblem(text, `${field}(${argument})`);
  if (nul) throw nul;
  const embedder = ctx.sheratanEmbedder;
  if (!embedder) {
    throw textError(
      `${field}(${argument}) needs an embedding provider, and this server has none (EMBEDDING_PROVIDER=none): send an embedding instead`,
      'EMBEDDING_PROVIDER_NONE',
    );
  }
  try {
    return await embedder.embedQuery(text);
  } catch (err) {
    throw providerError(err);
  }
}

/** `fieldArgs` with some arguments' steps replaced (the wrapped plan reads them as usual). */
function withArgs(fieldArgs: FieldArgs, replaced: Record<string, ExecutableStep>): FieldArgs {
  const patched = Object.create(fieldArgs) as FieldArgs;
  patched.getRaw = ((path?: string | readonly string[]) =>
    typeof path === 'string' && path in replaced ? replaced[path] : fieldArgs.getRaw(path as string)) as FieldArgs['getRaw'];
  return patched;
}

/** The search filter, marked as a search by text (for the search log). */
const markText = (filter: unknown, text: boolean): unknown => (text ? { ...((filter as object | null) ?? {}), query: 'text' } : filter);

type PlanFn = (...args: [ExecutableStep, FieldArgs, ...unknown[]]) => ExecutableStep;

export const TextSearchPlugin: GraphileConfig.Plugin = {
  name: 'SheratanTextSearchPlugin',
  version: '1.0.0',
  description: 'searchDocumentChunks(query) and hybridSearchDocumentChunks(queryText) embed their text on the server',
  schema: {
    hooks: {
      GraphQLObjectType_fields_field_args(args, build, hook) {
        const { Self, scope } = hook;
        if (Self.name !== 'Query' || scope.fieldName !== 'searchDocumentChunks' || !args.embedding) return args;
        const changed: GraphQLFieldConfigArgumentMap = {
          ...args,
          embedding: {
            ...args.embedding,
            type: getNullableType(args.embedding.type),
            description: 'The query embedding. Give this or `query`, not both.',
          },
        };
        return build.extend(
          changed,
          {
            query: {
              type: GraphQLString,
              description:
                'The question as text: the server embeds it with its embedding provider (a bounded cache keeps recent ones). Give this or `embedding`, not both.',
            },
          },
          'Adding query (search by text) to searchDocumentChunks',
        );
      },
      GraphQLObjectType_fields_field(field, build, hook) {
        const { Self, scope } = hook;
        const name = scope.fieldName;
        if (Self.name !== 'Query' || (name !== 'searchDocumentChunks' && name !== 'hybridSearchDocumentChunks') || !field.plan) return field;
        const plan = field.plan as unknown as PlanFn;
        const maxQueryText = (build.options as { sheratanRequestLimits?: { maxQueryText?: number } }).sheratanRequestLimits?.maxQueryText;
        if (name === 'searchDocumentChunks') {
          return {
            ...field,
            plan: (($parent: ExecutableStep, fieldArgs: FieldArgs, ...rest: unknown[]) => {
              const $embedding = fieldArgs.getRaw('embedding');
              const $query = fieldArgs.getRaw('query');
              const $vector = lambda([$embedding, $query, context()], async ([embedding, query, ctx]: readonly [unknown, unknown, Grafast.Context]) => {
                const hasVector = embedding !== null && embedding !== undefined;
                const hasText = query !== null && query !== undefined;
                if (hasVector === hasText) {
                  throw textError(
                    hasVector
                      ? 'searchDocumentChunks takes embedding or query, not both'
                      : 'searchDocumentChunks needs embedding (a vector) or query (text to embed)',
                    'EMBEDDING_OR_QUERY_REQUIRED',
                  );
                }
                return hasVector ? embedding : embedQueryText(ctx, query as string, 'searchDocumentChunks', 'query', maxQueryText);
              });
              const $queryText = lambda([fieldArgs.getRaw('queryText'), $query], ([given, query]: readonly [unknown, unknown]) => given ?? query ?? null, true);
              const $filter = lambda(
                [fieldArgs.getRaw('filter'), $query],
                ([filter, query]: readonly [unknown, unknown]) => markText(filter, query != null),
                true,
              );
              return plan($parent, withArgs(fieldArgs, { embedding: $vector, queryText: $queryText, filter: $filter }), ...rest);
            }) as unknown as typeof field.plan,
          };
        }
        return {
          ...field,
          plan: (($parent: ExecutableStep, fieldArgs: FieldArgs, ...rest: unknown[]) => {
            const $queryText = fieldArgs.getRaw('queryText');
            const $given = fieldArgs.getRaw('embedding');
            // With an embedder and no embedding, the text's vector joins the ranking.
            const $vector = lambda([$given, $queryText, context()], async ([embedding, text, ctx]: readonly [unknown, unknown, Grafast.Context]) => {
              if (embedding !== null && embedding !== undefined) return embedding;
              if (typeof text !== 'string' || !/\S/.test(text) || !ctx.sheratanEmbedder) return null;
              return embedQueryText(ctx, text, 'hybridSearchDocumentChunks', 'queryText', maxQueryText);
            });
            const $filter = lambda(
              [fieldArgs.getRaw('filter'), $given, $queryText, context()],
              ([filter, embedding, text, ctx]: readonly [unknown, unknown, unknown, Grafast.Context]) =>
                markText(filter, embedding == null && typeof text === 'string' && /\S/.test(text) && ctx.sheratanEmbedder !== undefined),
              true,
            );
            return plan($parent, withArgs(fieldArgs, { embedding: $vector, filter: $filter }), ...rest);
          }) as unknown as typeof field.plan,
        };
      },
    },
  },
};

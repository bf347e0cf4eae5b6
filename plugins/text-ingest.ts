// ingestDocument with text: without `chunks` the server splits `content`
// (paragraph- then sentence-aware, CHUNK_MAX_CHARS with CHUNK_OVERLAP_CHARS)
// and embeds the chunks; chunks sent with text only are embedded; chunks with
// their own `embedding` stay as they are. Each chunk keeps its offsets into
// the document and the model that embedded it.
//
// The work happens before the mutation's one statement, in a step of its own:
// the input is checked (the size cap, empty text, NUL) before anything runs,
// then small documents (up to EMBED_SYNC_MAX_CHARS of text to embed) are
// embedded within the request, and the statement
// (sheratan_private.ingest_prepared) stores the document and its prepared
// chunks at once. Larger documents, a provider that is down or busy, or a
// tenant over its rate: the chunks (or the whole content) are stored without
// vectors and the document is PENDING; the triggers queue its embedding job.
// A provider answering nonsense (wrong dimension, NaN, a malformed body) is
// an error and nothing is stored. Without an embedding provider the mutation
// stores what it is given, as before.
import { TYPES, pgSelect, type PgCodec, type PgResource } from 'postgraphile/@dataplan/pg';
import { access, context, lambda, object, type ExecutableStep, type FieldArgs } from 'postgraphile/grafast';
import { namedCall } from './match-select.ts';
import { nulProblem, providerError, textError, type SheratanEmbedder, type SheratanTextLimits } from './text-search.ts';

interface ChunkInput {
  content?: string | null;
  embedding?: number[] | null;
  chunkIndex?: number | null;
  metadata?: unknown;
  tokenCount?: number | null;
}

interface IngestInput {
  title?: string | null;
  content?: string | null;
  source?: string | null;
  metadata?: unknown;
  chunks?: Array<ChunkInput | null> | null;
}

/** A chunk as ingest_prepared stores it. */
interface PreparedChunk {
  content: string | null | undefined;
  embedding?: number[];
  model?: string;
  chunkIndex?: number | null;
  metadata?: unknown;
  tokenCount?: number | null;
  start?: number;
  end?: number;
}

interface Prepared {
  title: string | null | undefined;
  content: string;
  source: string | null | undefined;
  metadata: unknown;
  chunks: PreparedChunk[];
}

/** Whether a provider's failure may pass by waiting (the document is then PENDING) rather than being the answer. */
const retryable = (err: unknown): boolean => (err as { retryable?: unknown })?.retryable === true;

/** Offsets of client chunks: where each one's text is found in the document, searching on from the previous one. */
function locate(content: string, chunks: PreparedChunk[]): void {
  let from = 0;
  for (const chunk of chunks) {
    const text = chunk.content;
    if (!text) continue;
    let at = content.indexOf(text, from);
    if (at < 0) at = content.indexOf(text);
    if (at < 0) continue;
    chunk.start = at;
    chunk.end = at + text.length;
    from = at + 1;
  }
}

export async function prepareIngest(input: IngestInput, embedder: SheratanEmbedder | undefined, limits: SheratanTextLimits | undefined): Promise<Prepared> {
  const content = input.content ?? '';
  const given = input.chunks?.filter((c): c is ChunkInput => c !== null) ?? [];
  const maxChars = limits?.maxDocumentChars;
  if (maxChars !== undefined) {
    if (content.length > maxChars) {
      throw textError(`ingestDocument: content has ${content.length} characters, above the limit of ${maxChars} (MAX_DOCUMENT_CHARS)`, 'DOCUMENT_TOO_LARGE');
    }
    const chunked = given.reduce((n, c) => n + (c.content?.length ?? 0), 0);
    if (chunked > maxChars) {
      throw textError(
        `ingestDocument: the chunks have ${chunked} characters together, above the limit of ${maxChars} (MAX_DOCUMENT_CHARS)`,
        'DOCUMENT_TOO_LARGE',
      );
    }
  }
  const nul =
    nulProblem(content, 'ingestDocument: content') ?? given.map((c, i) => nulProblem(c.content ?? '', `ingestDocument: chunks[${i}].content`)).find(Boolean);
  if (nul) throw nul;

  let chunks: PreparedChunk[] = given.map((c) => ({
    content: c.content,
    ...(c.embedding ? { embedding: c.embedding } : {}),
    chunkIndex: c.chunkIndex,
    metadata: c.metadata,
    tokenCount: c.tokenCount,
  }));
  locate(content, chunks);
  const prepared = { title: input.title, content, source: input.source, metadata: input.metadata, chunks };
  if (!embedder) return prepared; // clients bring vectors (EMBEDDING_PROVIDER=none), as before

  if (given.length === 0) {
    if (!/\S/.test(content)) {
      throw textError(
        'ingestDocument: content is empty or only whitespace: there is nothing to chunk and embed (send text, or chunks with their embeddings)',
        'EMPTY_TEXT',
      );
    }
    const syncMax = limits?.embedSyncMaxChars ?? 0;
    // Above the bound the worker chunks it too (the document is PENDING with no chunks yet).
    if (content.length > syncMax) return prepared;
    chunks = embedder.chunkText(content).map((c) => ({ content: c.content, chunkIndex: c.index, start: c.start, end: c.end }));
    prepared.chunks = chunks;
  } else {
    given.forEach((c, i) => {
      if (!c.embedding && !/\S/.test(c.content ?? '')) {
        throw textError(`ingestDocument: chunks[${i}].content is empty or only whitespace and it has no embedding: there is nothing to embed`, 'EMPTY_TEXT');
      }
    });
  }
  const todo = chunks.filter((c) => !c.embedding);
  const chars = todo.reduce((n, c) => n + (c.content?.length ?? 0), 0);
  if (todo.length === 0 || chars > (limits?.embedSyncMaxChars ?? 0)) return prepared;
  let vectors: number[][];
  try {
    vectors = await embedder.embedTexts(todo.map((c) => c.content!));
  } catch (err) {
    if (retryable(err)) return prepared; // PENDING: a worker retries it
    throw providerError(err);
  }
  todo.forEach((c, i) => {
    c.embedding = vectors[i]!;
    c.model = embedder.model;
  });
  return prepared;
}

type PlanFn = (...args: [ExecutableStep, FieldArgs, ...unknown[]]) => ExecutableStep;

export const TextIngestPlugin: GraphileConfig.Plugin = {
  name: 'SheratanTextIngestPlugin',
  version: '1.0.0',
  description: 'ingestDocument chunks and embeds text on the server',
  inflection: {
    replace: {
      // Document.embeddingStatus reads PENDING, EMBEDDED, FAILED (the SQL enum's labels are lower case).
      enumValue(previous, options, value, codec) {
        const pgName = (codec.extensions as { pg?: { schemaName?: string; name?: string } } | undefined)?.pg;
        if (pgName?.schemaName === 'sheratan' && pgName.name === 'embedding_status') return value.toUpperCase();
        return previous!(value, codec);
      },
    },
  },
  schema: {
    hooks: {
      GraphQLObjectType_fields_field(field, build, context_) {
        const { Self, scope } = context_;
        if (Self.name !== 'Mutation' || scope.fieldName !== 'ingestDocument') return field;
        const resources = build.input.pgRegistry.pgResources as Record<string, PgResource>;
        const resource = resources.ingest_document;
        // The pipeline's SQL (documents.embedding_status, ingest_prepared) must be there; without it ingestDocument stays as generated.
        if (!resource || !resources.documents?.codec.attributes?.embedding_status) return field;
        const plan: PlanFn = (_$root, fieldArgs) => {
          const $input = fieldArgs.getRaw(['input']);
          const $prepared = lambda([$input, context()], ([input, ctx]: readonly [IngestInput, Grafast.Context]) =>
            prepareIngest(input, ctx.sheratanEmbedder, ctx.sheratanTextLimits),
          );
          const args: Array<readonly [string, ExecutableStep, PgCodec]> = [
            ['title', access($prepared, 'title'), TYPES.text],
            ['content', access($prepared, 'content'), TYPES.text],
            ['source', access($prepared, 'source'), TYPES.text],
            ['metadata', access($prepared, 'metadata'), TYPES.jsonb],
            ['chunks', access($prepared, 'chunks'), TYPES.jsonb],
          ];
          const $select = pgSelect({
            resource,
            identifiers: [],
            mode: 'mutation',
            from: {
              callback: ($root) =>
                namedCall(
                  ['sheratan_private', 'ingest_prepared'],
                  args.map(([name, $step, codec]) => [name, $root.placeholder($step, codec)] as const),
                ),
            },
          });
          return object({ result: $select.single() });
        };
        return { ...field, plan: plan as unknown as typeof field.plan };
      },
    },
  },
};

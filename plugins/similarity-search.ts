// Query.searchDocumentChunks: nearest chunks by cosine distance, as a list of
// { similarity, distance, chunk }, optionally at most N per document and
// re-ranked for diversity (MMR). The search itself is the SQL function
// sheratan.search_document_chunks (explicit `order by embedding <=> q limit k`,
// RLS as the caller, one search_logs row per call), which returns the chunk
// rows in result order; this plugin gives them their GraphQL shape in the same
// statement: each row is the `chunk`, and the distance is recomputed for the
// k rows.
import { TYPES, pgSelect, type PgCodec, type PgResource, type PgSelectSingleStep } from 'postgraphile/@dataplan/pg';
import { each, object, type ExecutableStep } from 'postgraphile/grafast';
import { extendSchema, gql } from 'postgraphile/utils';
import { sql } from 'postgraphile/pg-sql2';
import { vectorCodec } from './vector-codec.ts';
import { distanceFields, namedCall, planFieldsOf } from './match-select.ts';

export const SimilaritySearchPlugin = extendSchema((build) => {
  const resources = build.input.pgRegistry.pgResources as Record<string, PgResource>;
  const search = resources.search_document_chunks;
  if (!search) throw new Error('SimilaritySearchPlugin needs the function sheratan.search_document_chunks');
  return {
    typeDefs: gql`
      """
      Restricts a similarity search. Every condition given must hold.
      """
      input DocumentChunkSearchFilter {
        "Only chunks of these documents."
        documentIds: [UUID!]
        "Only chunks of documents with one of these sources."
        sources: [String!]
        "Only chunks whose metadata contains this JSON object (\`@>\`)."
        metadata: JSON
        "Only chunks created at or after this time."
        createdAfter: Datetime
        "Only chunks created before this time."
        createdBefore: Datetime
      }

      """
      Re-ranks a search by maximal marginal relevance: each next result is the
      candidate with the best \`lambda × similarity to the query − (1 − lambda) ×
      highest similarity to a result already chosen\`, so near-duplicates do not
      fill the page.
      """
      input SearchDiversity {
        "1 ranks by relevance only, 0 by novelty only."
        lambda: Float = 0.5
        "How many of the nearest chunks to choose from: from first + offset to 1000; default 4 × (first + offset), at least 20."
        candidates: Int
      }

      """
      A chunk found by similarity search.
      """
      type DocumentChunkSearchResult {
        "Cosine similarity to the query embedding: 1 − distance (1 is identical)."
        similarity: Float!
        "Cosine distance to the query embedding, from 0 to 2."
        distance: Float!
        "The matching chunk."
        chunk: DocumentChunk!
      }

      extend type Query {
        """
        The chunks nearest to \`embedding\` by cosine distance, most similar first,
        within your tenant. Each call is recorded in search logs.
        """
        searchDocumentChunks(
          "The query embedding."
          embedding: Vector!
          "How many results (at most MAX_SEARCH_RESULTS)."
          first: Int = 10
          "How many of the best results to skip."
          offset: Int = 0
          "Only results at least this similar."
          minSimilarity: Float
          filter: DocumentChunkSearchFilter
          "The text that was embedded, kept in search logs for analytics."
          queryText: String
          "At most this many chunks of any one document."
          maxPerDocument: Int
          "Re-rank the nearest candidates for diversity (MMR)."
          diversity: SearchDiversity
        ): [DocumentChunkSearchResult!]!
      }
    `,
    objects: {
      Query: {
        plans: {
          searchDocumentChunks(_$root, fieldArgs) {
            const $embedding = fieldArgs.getRaw('embedding');
            // The query vector is one parameter shared by the function call and
            // the distance of each row (parsing 384 floats is not free), and
            // both live inside the FROM: identical searches in one request are
            // deduplicated into one step, so nothing outside may refer to the
            // placeholder of a step that may be dropped. 'normal' mode (the
            // function is volatile only because it logs the search) lets
            // relations of `chunk` join into this statement.
            const $select = pgSelect({
              resource: search,
              identifiers: [],
              mode: 'normal',
              // The order is explicit (below), so relations may join into this statement.
              hasImplicitOrder: false,
              from: {
                callback: ($root) => {
                  const arg = (name: string, $step: ExecutableStep, codec: PgCodec) => [name, $root.placeholder($step, codec)] as const;
                  const call = namedCall(
                    ['sheratan', 'search_document_chunks'],
                    [
                      ['embedding', sql`q.embedding`],
                      arg('first', fieldArgs.getRaw('first'), TYPES.int),
                      arg('offset', fieldArgs.getRaw('offset'), TYPES.int),
                      arg('min_similarity', fieldArgs.getRaw('minSimilarity'), TYPES.float),
                      arg('filter', fieldArgs.getRaw('filter'), TYPES.jsonb),
                      arg('query_text', fieldArgs.getRaw('queryText'), TYPES.text),
                      arg('max_per_document', fieldArgs.getRaw('maxPerDocument'), TYPES.int),
                      arg('mmr_lambda', fieldArgs.getRaw(['diversity', 'lambda']), TYPES.float),
                      arg('mmr_candidates', fieldArgs.getRaw(['diversity', 'candidates']), TYPES.int),
                    ],
                  );
                  return sql`(select c.*, c.embedding <=> q.embedding as match_distance
  from (select ${$root.placeholder($embedding, vectorCodec)} as embedding) as q
  cross join lateral ${call} with ordinality as c)`;
                },
              },
            });
            const distance = sql`${$select.alias}.match_distance`;
            // The function returns its rows in result order (nearest first, or as
            // MMR chose them); the outer statement keeps that order explicitly.
            $select.orderBy({ fragment: sql`${$select.alias}.ordinality`, codec: TYPES.bigint, direction: 'ASC' });
            $select.setOrderIsUnique();
            return each($select, ($row) => {
              const $chunk = $row as PgSelectSingleStep;
              return object({ chunk: $chunk, ...distanceFields($chunk, distance) });
            });
          },
        },
      },
      DocumentChunkSearchResult: { plans: planFieldsOf(['chunk', 'distance', 'similarity']) },
    },
  };
});

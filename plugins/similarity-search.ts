// Query.searchDocumentChunks: nearest chunks by cosine distance, as a list of
// { similarity, distance, chunk }, optionally at most N per document and
// re-ranked for diversity (MMR). The search itself is the SQL function
// sheratan.search_document_chunks (explicit `order by embedding <=> q limit k`,
// RLS as the caller, one search_logs row per call), which returns (id,
// distance) in result order, as every search does; the chunks are joined by
// id in the same statement (match-select.ts).
import { TYPES, type PgResource, type PgSelectSingleStep } from 'postgraphile/@dataplan/pg';
import { each, object } from 'postgraphile/grafast';
import { extendSchema, gql } from 'postgraphile/utils';
import { vectorCodecOf } from './vector-codec.ts';
import { argOrDefault, distanceFields, planFieldsOf, selectMatches } from './match-select.ts';

export const SimilaritySearchPlugin = extendSchema((build) => {
  const resources = build.input.pgRegistry.pgResources as Record<string, PgResource>;
  const chunks = resources.document_chunks;
  const vector = vectorCodecOf(build);
  const vectorType = build.inflection.vectorScalar();
  if (!chunks) throw new Error('SimilaritySearchPlugin needs the table sheratan.document_chunks');
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
          embedding: ${vectorType}!
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
        ): [DocumentChunkSearchResult!]! @scope(isSheratanSearch: true)
      }
    `,
    objects: {
      Query: {
        plans: {
          searchDocumentChunks(_$root, fieldArgs, info) {
            const { $select, score } = selectMatches(
              chunks,
              ['sheratan', 'search_document_chunks'],
              [
                ['embedding', fieldArgs.getRaw('embedding'), vector],
                ['first', argOrDefault(fieldArgs, info, 'first'), TYPES.int],
                ['offset', argOrDefault(fieldArgs, info, 'offset'), TYPES.int],
                ['min_similarity', fieldArgs.getRaw('minSimilarity'), TYPES.float],
                ['filter', fieldArgs.getRaw('filter'), TYPES.jsonb],
                ['query_text', fieldArgs.getRaw('queryText'), TYPES.text],
                ['max_per_document', fieldArgs.getRaw('maxPerDocument'), TYPES.int],
                ['mmr_lambda', fieldArgs.getRaw(['diversity', 'lambda']), TYPES.float],
                ['mmr_candidates', fieldArgs.getRaw(['diversity', 'candidates']), TYPES.int],
              ],
              { distance: TYPES.float },
            );
            return each($select, ($row) => {
              const $chunk = $row as PgSelectSingleStep;
              return object({ chunk: $chunk, ...distanceFields($chunk, score('distance')) });
            });
          },
        },
      },
      DocumentChunkSearchResult: { plans: planFieldsOf(['chunk', 'distance', 'similarity']) },
    },
  };
});

// Query.searchDocumentChunks: nearest chunks by cosine distance, as a list of
// { similarity, distance, chunk }. The search itself is the SQL function
// sheratan.search_document_chunks (explicit `order by embedding <=> q limit k`,
// RLS as the caller, one search_logs row per call); this plugin gives it its
// GraphQL shape and joins each match to its full DocumentChunk.
import { TYPES, type PgResource, type PgSelectSingleStep } from 'postgraphile/@dataplan/pg';
import { extendSchema, gql } from 'postgraphile/utils';
import { vectorCodec } from './vector-codec.ts';

export const SimilaritySearchPlugin = extendSchema((build) => {
  const resources = build.input.pgRegistry.pgResources as Record<string, PgResource>;
  const search = resources.search_document_chunks;
  const chunks = resources.document_chunks;
  if (!search || !chunks) throw new Error('SimilaritySearchPlugin needs sheratan.search_document_chunks and sheratan.document_chunks');
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
        ): [DocumentChunkSearchResult!]!
      }
    `,
    objects: {
      Query: {
        plans: {
          searchDocumentChunks(_$root, fieldArgs) {
            // Named arguments: omitted GraphQL arguments fall back to the SQL defaults.
            return search.execute([
              { name: 'embedding', step: fieldArgs.getRaw('embedding'), pgCodec: vectorCodec },
              { name: 'first', step: fieldArgs.getRaw('first'), pgCodec: TYPES.int },
              { name: 'offset', step: fieldArgs.getRaw('offset'), pgCodec: TYPES.int },
              { name: 'min_similarity', step: fieldArgs.getRaw('minSimilarity'), pgCodec: TYPES.float },
              { name: 'filter', step: fieldArgs.getRaw('filter'), pgCodec: TYPES.jsonb },
              { name: 'query_text', step: fieldArgs.getRaw('queryText'), pgCodec: TYPES.text },
            ]);
          },
        },
      },
      DocumentChunkSearchResult: {
        plans: {
          chunk($match: PgSelectSingleStep) {
            return chunks.get({ id: $match.get('chunk_id') });
          },
        },
      },
    },
  };
});

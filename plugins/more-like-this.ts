// "More like this": DocumentChunk.similarChunks and Document.similarDocuments.
// The rankings are the SQL functions sheratan.similar_chunks and
// sheratan.similar_documents (RLS as the caller, one search_logs row per
// call, the item itself left out). Under a list of chunks or documents the
// calls are batched into one statement (a lateral join per parent).
import { TYPES, type PgResource, type PgSelectSingleStep } from 'postgraphile/@dataplan/pg';
import { each, object } from 'postgraphile/grafast';
import { extendSchema, gql } from 'postgraphile/utils';
import { argOrDefault, distanceFields, planFieldsOf, selectMatches, type SearchArgument } from './match-select.ts';

/** `{ <item>, distance, similarity }` for each row `fn` ranks, nearest first. */
function nearest(item: 'chunk' | 'document', resource: PgResource, fn: string, args: readonly SearchArgument[]) {
  const { $select, score } = selectMatches(resource, ['sheratan', fn], args, { distance: TYPES.float });
  return each($select, ($row) => {
    const $match = $row as PgSelectSingleStep;
    return object({ [item]: $match, ...distanceFields($match, score('distance')) });
  });
}

export const MoreLikeThisPlugin = extendSchema((build) => {
  const resources = build.input.pgRegistry.pgResources as Record<string, PgResource>;
  const chunks = resources.document_chunks;
  const documents = resources.documents;
  if (!chunks || !documents) throw new Error('MoreLikeThisPlugin needs the tables sheratan.documents and sheratan.document_chunks');
  return {
    typeDefs: gql`
      """
      A document found by similarity to another document.
      """
      type DocumentSearchResult {
        "Cosine similarity of its nearest chunk to the other document's mean embedding (1 is identical)."
        similarity: Float!
        "Cosine distance of its nearest chunk to the other document's mean embedding, from 0 to 2."
        distance: Float!
        "The similar document."
        document: Document!
      }

      extend type DocumentChunk {
        """
        The chunks most similar to this one (by cosine distance of their
        embeddings), most similar first, this chunk left out. Empty if this chunk
        has no embedding. Each call is recorded in search logs.
        """
        similarChunks("How many results (at most MAX_SEARCH_RESULTS)." first: Int = 10, filter: DocumentChunkSearchFilter): [DocumentChunkSearchResult!]!
          @scope(isSheratanSearch: true)
      }

      extend type Document {
        """
        The documents most similar to this one, most similar first, this one left
        out. This document is represented by the mean of its chunks' embeddings;
        each other document by its chunk nearest to that mean. Empty if no chunk
        of this document has an embedding. Each call is recorded in search logs.
        """
        similarDocuments("How many results (at most MAX_SEARCH_RESULTS)." first: Int = 10): [DocumentSearchResult!]! @scope(isSheratanSearch: true)
      }
    `,
    objects: {
      DocumentChunk: {
        plans: {
          similarChunks($chunk: PgSelectSingleStep, fieldArgs, info) {
            return nearest('chunk', chunks, 'similar_chunks', [
              ['chunk_id', $chunk.get('id'), TYPES.uuid],
              ['first', argOrDefault(fieldArgs, info, 'first'), TYPES.int],
              ['filter', fieldArgs.getRaw('filter'), TYPES.jsonb],
            ]);
          },
        },
      },
      Document: {
        plans: {
          similarDocuments($document: PgSelectSingleStep, fieldArgs, info) {
            return nearest('document', documents, 'similar_documents', [
              ['document_id', $document.get('id'), TYPES.uuid],
              ['first', argOrDefault(fieldArgs, info, 'first'), TYPES.int],
            ]);
          },
        },
      },
      DocumentSearchResult: { plans: planFieldsOf(['document', 'distance', 'similarity']) },
    },
  };
});

// Query.hybridSearchDocumentChunks: full-text and vector search fused by
// reciprocal rank, optionally re-ranked for diversity (MMR). The ranking is the SQL function
// sheratan.hybrid_search_document_chunks (RLS as the caller, one search_logs
// row per call); this plugin gives its rows their GraphQL shape in one statement.
import { TYPES, type PgResource, type PgSelectSingleStep } from 'postgraphile/@dataplan/pg';
import { each, object } from 'postgraphile/grafast';
import { extendSchema, gql } from 'postgraphile/utils';
import { vectorCodecOf } from './vector-codec.ts';
import { argOrDefault, distanceFields, planFieldsOf, selectMatches } from './match-select.ts';

export const HybridSearchPlugin = extendSchema((build) => {
  const chunks = (build.input.pgRegistry.pgResources as Record<string, PgResource>).document_chunks;
  const vector = vectorCodecOf(build);
  const vectorType = build.inflection.vectorScalar();
  if (!chunks) throw new Error('HybridSearchPlugin needs the table sheratan.document_chunks');
  return {
    typeDefs: gql`
      """
      A chunk found by hybrid search. Its score is the reciprocal rank fusion of
      its ranks: \`textWeight / (rrfK + textRank) + vectorWeight / (rrfK + vectorRank)\`,
      counting only the lists it is in.
      """
      type HybridSearchResult {
        "The fused score; results are ordered by it, highest first."
        score: Float!
        "Rank (from 1) among the full-text matches, or null if the text did not match it."
        textRank: Int
        "Rank (from 1) among the nearest chunks, or null if it was not among the candidates (or no embedding was given)."
        vectorRank: Int
        "Full-text relevance (\`ts_rank_cd\`), or null if the text did not match it."
        textScore: Float
        "Cosine similarity to the query embedding, or null without an embedding."
        similarity: Float
        "Cosine distance to the query embedding, or null without an embedding."
        distance: Float
        "The matching chunk."
        chunk: DocumentChunk!
      }

      extend type Query {
        """
        Chunks ranked by both full-text relevance to \`queryText\` and similarity to
        \`embedding\`, fused by reciprocal rank, within your tenant. Give either or
        both. The text is parsed like a web search (\`"exact phrase"\`, \`or\`,
        \`-not\`) with the TEXT_SEARCH_CONFIG configuration. Each call is recorded in
        search logs.
        """
        hybridSearchDocumentChunks(
          "The search text."
          queryText: String
          "The query embedding."
          embedding: ${vectorType}
          "How many results (at most MAX_SEARCH_RESULTS)."
          first: Int = 10
          "How many of the best results to skip."
          offset: Int = 0
          filter: DocumentChunkSearchFilter
          "At most this many chunks of any one document."
          maxPerDocument: Int
          "The fusion constant k: larger values flatten the difference between ranks."
          rrfK: Int = 60
          "Weight of the full-text ranking."
          textWeight: Float = 1
          "Weight of the vector ranking."
          vectorWeight: Float = 1
          "How many candidates each ranking contributes: from first + offset to 1000; default 4 × (first + offset), at least 50."
          candidates: Int
          "Re-rank the best fused results for diversity (MMR): relevance is the fused score over the best one, novelty the cosine similarity to the results already taken."
          diversity: SearchDiversity
        ): [HybridSearchResult!]! @scope(isSheratanSearch: true)
      }
    `,
    objects: {
      Query: {
        plans: {
          hybridSearchDocumentChunks(_$root, fieldArgs, info) {
            const { $select, score } = selectMatches(
              chunks,
              ['sheratan', 'hybrid_search_document_chunks'],
              [
                ['query_text', fieldArgs.getRaw('queryText'), TYPES.text],
                ['embedding', fieldArgs.getRaw('embedding'), vector],
                ['first', argOrDefault(fieldArgs, info, 'first'), TYPES.int],
                ['offset', argOrDefault(fieldArgs, info, 'offset'), TYPES.int],
                ['filter', fieldArgs.getRaw('filter'), TYPES.jsonb],
                ['max_per_document', fieldArgs.getRaw('maxPerDocument'), TYPES.int],
                ['rrf_k', fieldArgs.getRaw('rrfK'), TYPES.int],
                ['text_weight', fieldArgs.getRaw('textWeight'), TYPES.float],
                ['vector_weight', fieldArgs.getRaw('vectorWeight'), TYPES.float],
                ['candidates', fieldArgs.getRaw('candidates'), TYPES.int],
                ['mmr_lambda', fieldArgs.getRaw(['diversity', 'lambda']), TYPES.float],
                ['mmr_candidates', fieldArgs.getRaw(['diversity', 'candidates']), TYPES.int],
              ],
              {
                score: TYPES.float,
                text_rank: TYPES.int,
                vector_rank: TYPES.int,
                text_score: TYPES.float,
                distance: TYPES.float,
              },
            );
            return each($select, ($row) => {
              const $chunk = $row as PgSelectSingleStep;
              return object({
                chunk: $chunk,
                score: $chunk.select(score('score'), TYPES.float),
                textRank: $chunk.select(score('text_rank'), TYPES.int),
                vectorRank: $chunk.select(score('vector_rank'), TYPES.int),
                textScore: $chunk.select(score('text_score'), TYPES.float),
                ...distanceFields($chunk, score('distance')),
              });
            });
          },
        },
      },
      HybridSearchResult: {
        plans: planFieldsOf(['chunk', 'score', 'textRank', 'vectorRank', 'textScore', 'similarity', 'distance']),
      },
    },
  };
});

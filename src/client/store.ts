// A small typed client for the store's two main calls, for applications that
// do not generate their own types: store a document with its embedded chunks,
// and search by similarity. Anything else: `request()` with your own query.
import { graphqlRequest, type Endpoint } from './request.ts';

export interface ChunkInput {
  content: string;
  /** VECTOR_DIMENSION numbers. */
  embedding: number[];
  chunkIndex?: number;
  metadata?: Record<string, unknown>;
  tokenCount?: number;
}

export interface DocumentInput {
  title: string;
  content?: string;
  source?: string;
  metadata?: Record<string, unknown>;
  chunks: ChunkInput[];
}

export interface SearchFilter {
  documentIds?: string[];
  sources?: string[];
  metadata?: Record<string, unknown>;
  createdAfter?: string;
  createdBefore?: string;
}

export interface SearchOptions {
  first?: number;
  offset?: number;
  minSimilarity?: number;
  filter?: SearchFilter;
  queryText?: string;
  maxPerDocument?: number;
  diversity?: { lambda?: number; candidates?: number };
}

export interface SearchMatch {
  similarity: number;
  distance: number;
  chunk: {
    rowId: string;
    content: string | null;
    chunkIndex: number;
    metadata: Record<string, unknown> | null;
    document: { rowId: string; title: string; source: string | null };
  };
}

export interface StoreClient {
  /** Stores a document and its chunks in one transaction; returns the document's id. */
  ingest(document: DocumentInput): Promise<string>;
  /** The chunks nearest to `embedding`, most similar first. */
  search(embedding: number[], options?: SearchOptions): Promise<SearchMatch[]>;
  /** Any other operation. */
  request<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
}

const INGEST = 'mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { rowId } } }';
const SEARCH = `query ($embedding: Vector!, $first: Int, $offset: Int, $minSimilarity: Float, $filter: DocumentChunkSearchFilter,
                      $queryText: String, $maxPerDocument: Int, $diversity: SearchDiversity) {
  searchDocumentChunks(embedding: $embedding, first: $first, offset: $offset, minSimilarity: $minSimilarity, filter: $filter,
                       queryText: $queryText, maxPerDocument: $maxPerDocument, diversity: $diversity) {
    similarity distance
    chunk { rowId content chunkIndex metadata document { rowId title source } }
  }
}`;

export function createStoreClient(endpoint: Endpoint): StoreClient {
  return {
    async ingest(document) {
      const data = await graphqlRequest<{ ingestDocument: { document: { rowId: string } } }>(endpoint, INGEST, { input: document });
      return data.ingestDocument.document.rowId;
    },
    async search(embedding, options = {}) {
      return (await graphqlRequest<{ searchDocumentChunks: SearchMatch[] }>(endpoint, SEARCH, { embedding, ...options })).searchDocumentChunks;
    },
    request: (query, variables) => graphqlRequest(endpoint, query, variables),
  };
}

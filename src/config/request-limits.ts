// The limits every GraphQL request is held to and their defaults: the ground
// floor both the configuration (which reads each one's environment variable,
// config.ts) and the plugins that enforce them (plugins/request-limits.ts,
// plugins/grouped-aggregates-cap.ts) read, so each default is stated once.
/** The limits every request is held to; the environment variable of each is in its comment. */
export interface RequestLimits {
  /** MAX_QUERY_DEPTH */
  maxQueryDepth: number;
  /** MAX_QUERY_FIELDS */
  maxFields: number;
  /** MAX_QUERY_ALIASES */
  maxAliases: number;
  /** MAX_QUERY_COST */
  maxCost: number;
  /** MAX_PAGE_SIZE */
  maxPageSize: number;
  /** MAX_OFFSET */
  maxOffset: number;
  /** MAX_SEARCH_RESULTS: the largest `first` of a search field. */
  maxSearchResults: number;
  /** MAX_SEARCHES_PER_REQUEST */
  maxSearches: number;
  /** MAX_QUERY_TEXT_LENGTH */
  maxQueryText: number;
  /** MAX_DOCUMENT_BYTES: the GraphQL document's size in UTF-8 bytes, checked before anything reads it. */
  maxDocumentBytes: number;
  /** MAX_QUERY_TOKENS: lexical tokens of the document, counted by graphql's own lexer before parsing. */
  maxTokens: number;
  /** MAX_QUERY_DIRECTIVES: directives in one document (each one validation must check and may report). */
  maxDirectives: number;
  /** MAX_QUERY_FRAGMENTS: fragment definitions and spreads in one document (validation compares them pairwise). */
  maxFragments: number;
  /** MAX_QUERY_VARIABLES: variable definitions in one document. */
  maxVariables: number;
  /** GRAPHQL_INTROSPECTION */
  introspection: boolean;
}

/** What the limits are when nothing sets them: the environment variables' defaults (config.ts reads the variables over these). */
export const DEFAULT_REQUEST_LIMITS: Readonly<RequestLimits> = {
  maxQueryDepth: 12,
  maxFields: 1000,
  maxAliases: 50,
  maxCost: 50_000,
  maxPageSize: 1000,
  maxOffset: 10_000,
  maxSearchResults: 100,
  maxSearches: 20,
  maxQueryText: 2000,
  // grafserv's own default for a whole request (maxRequestLength) is 100,000 bytes.
  maxDocumentBytes: 100_000,
  // A 4,000-number vector literal is about 4,000 tokens; graphql's introspection query about 300.
  maxTokens: 15_000,
  maxDirectives: 100,
  maxFragments: 100,
  maxVariables: 100,
  introspection: true,
};

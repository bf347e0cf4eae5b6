// GraphQL Code Generator for typed clients. With @graphql-codegen/cli and
// @graphql-codegen/typescript-operations (6.x: it writes the input types and
// enums the operations use) installed in your client project, copy this file there and run
// `npx graphql-codegen`: it reads the committed schema.graphql (or the
// gateway's URL, with introspection on) and your operations, and writes
// their types. `scalars` is the map for the store's custom scalars: without
// it every one of them is `unknown` (any value type-checks as a Vector), and
// `strictScalars` fails on the first it does not know.
export const scalars = {
  /** A JSON array of VECTOR_DIMENSION numbers. */
  Vector: 'number[]',
  /** Arbitrary JSON (metadata, payloads, results). */
  JSON: 'unknown',
  /** Sent and returned as strings: they may exceed a JavaScript number. */
  BigInt: 'string',
  BigFloat: 'string',
  /** Opaque pagination cursors. */
  Cursor: 'string',
  /** ISO 8601 timestamps, e.g. 2026-12-01T09:30:00.000Z. */
  Datetime: 'string',
  UUID: 'string',
} as const;

export const config = {
  // Or 'http://127.0.0.1:5678/graphql' while the gateway runs in development.
  schema: 'schema.graphql',
  documents: ['src/**/*.graphql'],
  generates: {
    'src/gql/types.ts': {
      plugins: ['typescript-operations'],
      config: { strictScalars: true, scalars, enumsAsTypes: true, avoidOptionals: { field: true } },
    },
  },
};

export default config;

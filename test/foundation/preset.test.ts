// The GraphQL layer is data: SheratanPreset and ReportingPreset, composed in
// a user's own preset with nothing but a pg service and a schema option, give
// exactly the committed schema.graphql and reporting.graphql; and the
// request limits hold with the preset's own defaults when nothing sets them.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { grafast } from 'grafast';
import { getNamedType, getNullableType, isListType, isObjectType, lexicographicSortSchema, printSchema } from 'graphql';
import { postgraphile } from 'postgraphile';
import { makePgService } from 'postgraphile/adaptors/pg';
import { projectRoot } from '../../src/config/paths.ts';
import { DEFAULT_REQUEST_LIMITS } from '../../src/config/request-limits.ts';
import { exposedSchemas, ReportingPreset, SheratanPreset } from '../../plugins/preset.ts';
import { isSearchField } from '../../plugins/operation-cost.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

/** A user's preset: ours, a pg service for the caller's role over the schemas the preset exposes, the dimension. */
const userPreset = (base: GraphileConfig.Preset, role: string): GraphileConfig.Preset => ({
  extends: [base],
  pgServices: [makePgService({ connectionString: h.gateway.db.authUrl, schemas: [...exposedSchemas(base)], pgSettingsForIntrospection: { role } })],
  schema: { sheratanVectorDimension: 384 },
});

test.each([
  ['SheratanPreset', 'schema.graphql', SheratanPreset, 'sheratan_app'],
  ['ReportingPreset', 'reporting.graphql', ReportingPreset, 'sheratan_readonly'],
] as const)('%s alone builds the committed %s', async (_name, file, base, role) => {
  const instance = postgraphile(userPreset(base, role));
  try {
    const sdl = `${printSchema(lexicographicSortSchema(await instance.getSchema()))}\n`;
    expect(sdl).toBe(readFileSync(path.join(projectRoot, file), 'utf8'));
  } finally {
    await instance.release();
  }
});

test("without options the limits are the plugin's defaults: a search's first above MAX_SEARCH_RESULTS' default is refused", async () => {
  const instance = postgraphile({
    ...userPreset(SheratanPreset, 'sheratan_app'),
    grafast: { context: () => ({ pgSettings: { role: 'sheratan_app', 'jwt.claims.tenant': 'preset-test' } }) },
  });
  try {
    const { schema, resolvedPreset } = await instance.getSchemaResult();
    const embedding = Array.from({ length: 384 }, (_, i) => (i === 0 ? 1 : 0));
    const run = (first: number) =>
      grafast({
        schema,
        resolvedPreset,
        requestContext: {},
        source: 'query ($e: Vector!, $n: Int) { searchDocumentChunks(embedding: $e, first: $n) { distance } }',
        variableValues: { e: embedding, n: first },
      });
    const over = (await run(DEFAULT_REQUEST_LIMITS.maxSearchResults + 1)) as { errors?: Array<{ message: string }> };
    expect(over.errors?.[0]?.message).toMatch(
      new RegExp(`MAX_SEARCH_RESULTS.*${DEFAULT_REQUEST_LIMITS.maxSearchResults}|${DEFAULT_REQUEST_LIMITS.maxSearchResults}.*MAX_SEARCH_RESULTS`),
    );
    const within = (await run(DEFAULT_REQUEST_LIMITS.maxSearchResults)) as { errors?: unknown; data?: { searchDocumentChunks: unknown[] } };
    expect(within.errors).toBeUndefined();
    expect(within.data!.searchDocumentChunks).toEqual([]);
  } finally {
    await instance.release();
  }
});

test("the cost walk knows a connection by graphile-build's scope, not by its name: renamed connection types still multiply and still need first or last", async () => {
  // A user's inflection names connection types `…Page`: the cost of nested pages must not fall to one row each.
  const RenameConnections: GraphileConfig.Plugin = {
    name: 'TestRenameConnectionsPlugin',
    version: '0.0.0',
    inflection: { replace: { connectionType: (_previous, _options, typeName) => `${typeName}Page` } },
  };
  const base = userPreset(SheratanPreset, 'sheratan_app');
  const instance = postgraphile({
    ...base,
    plugins: [RenameConnections],
    grafast: { context: () => ({ pgSettings: { role: 'sheratan_app', 'jwt.claims.tenant': 'preset-test' } }) },
  });
  try {
    const { schema, resolvedPreset } = await instance.getSchemaResult();
    expect(schema.getType('DocumentPage')).toBeDefined();
    expect(schema.getType('DocumentConnection')).toBeUndefined();
    // 1,000 documents × 1,000 chunks each is far over MAX_QUERY_COST's default, whatever the types are called.
    const pages = 1000;
    expect(pages * pages).toBeGreaterThan(DEFAULT_REQUEST_LIMITS.maxCost);
    const result = (await grafast({
      schema,
      resolvedPreset,
      requestContext: {},
      source: `{ allDocuments(first: ${pages}) { nodes { chunks(first: ${pages}) { nodes { id } } } } }`,
    })) as { errors?: Array<{ message: string }> };
    expect(result.errors?.[0]?.message).toMatch(/MAX_QUERY_COST/);
    // A page without first or last is refused, not read whole.
    const unbounded = (await grafast({ schema, resolvedPreset, requestContext: {}, source: '{ allDocuments { nodes { id } } }' })) as {
      errors?: Array<{ message: string; extensions?: { code?: string } }>;
    };
    expect(unbounded.errors?.[0]).toMatchObject({ message: expect.stringMatching(/allDocuments needs first or last/) });
  } finally {
    await instance.release();
  }
});

test('the schema says which fields search (declared @scope(isSheratanSearch: true)): each field returning search results, and no other', async () => {
  const instance = postgraphile(userPreset(SheratanPreset, 'sheratan_app'));
  try {
    const schema = await instance.getSchema();
    const marked: string[] = [];
    const returningResults: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__')) continue;
      for (const field of Object.values(type.getFields())) {
        const coordinate = `${type.name}.${field.name}`;
        if (isSearchField(field)) marked.push(coordinate);
        if (isListType(getNullableType(field.type)) && /SearchResult$/.test(getNamedType(field.type).name)) returningResults.push(coordinate);
      }
    }
    expect(marked.sort()).toEqual(returningResults.sort());
    expect(marked.sort()).toEqual([
      'Document.similarDocuments',
      'DocumentChunk.similarChunks',
      'Query.hybridSearchDocumentChunks',
      'Query.searchDocumentChunks',
    ]);
  } finally {
    await instance.release();
  }
});

test('the Vector scalar is named by inflection (vectorScalar), as graphile-build-pg names its scalars: renamed there, it is renamed everywhere and searches still run', async () => {
  const RenameVector: GraphileConfig.Plugin = {
    name: 'TestRenameVectorPlugin',
    version: '0.0.0',
    inflection: { replace: { vectorScalar: () => 'Embedding' } },
  };
  const instance = postgraphile({
    ...userPreset(SheratanPreset, 'sheratan_app'),
    plugins: [RenameVector],
    grafast: { context: () => ({ pgSettings: { role: 'sheratan_app', 'jwt.claims.tenant': 'preset-test' } }) },
  });
  try {
    const { schema, resolvedPreset } = await instance.getSchemaResult();
    expect(schema.getType('Vector')).toBeUndefined();
    expect(schema.getType('Embedding')).toBeDefined();
    const sdl = printSchema(schema);
    // Every use: columns, the search arguments, the inputs that take embeddings.
    expect(sdl).not.toMatch(/\bVector\b/);
    const query = schema.getQueryType()!.getFields();
    for (const field of ['searchDocumentChunks', 'hybridSearchDocumentChunks'])
      expect(getNamedType(query[field]!.args.find((a) => a.name === 'embedding')!.type).name).toBe('Embedding');
    const embedding = Array.from({ length: 384 }, (_, i) => (i === 0 ? 1 : 0));
    const result = (await grafast({
      schema,
      resolvedPreset,
      requestContext: {},
      source:
        'query ($e: Embedding!) { searchDocumentChunks(embedding: $e, first: 1) { distance } hybridSearchDocumentChunks(embedding: $e, queryText: "x", first: 1) { score } }',
      variableValues: { e: embedding },
    })) as { errors?: unknown; data?: unknown };
    expect(result.errors).toBeUndefined();
    // A bad embedding is still refused by the scalar, under its new name.
    const zero = (await grafast({
      schema,
      resolvedPreset,
      requestContext: {},
      source: 'query ($e: Embedding!) { searchDocumentChunks(embedding: $e) { distance } }',
      variableValues: { e: embedding.map(() => 0) },
    })) as { errors?: Array<{ message: string }> };
    expect(zero.errors?.[0]?.message).toMatch(/zero vector/);
  } finally {
    await instance.release();
  }
});

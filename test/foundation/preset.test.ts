// The GraphQL layer is data: SheratanPreset and ReportingPreset, composed in
// a user's own preset with nothing but a pg service and a schema option, give
// exactly the committed schema.graphql and reporting.graphql; and the
// request limits hold with the preset's own defaults when nothing sets them.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { grafast } from 'grafast';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { postgraphile } from 'postgraphile';
import { makePgService } from 'postgraphile/adaptors/pg';
import { projectRoot } from '../../src/config/paths.ts';
import { DEFAULT_REQUEST_LIMITS } from '../../src/config/request-limits.ts';
import { exposedSchemas, ReportingPreset, SheratanPreset } from '../../plugins/preset.ts';
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

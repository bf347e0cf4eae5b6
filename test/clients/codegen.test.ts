// Typed clients: GraphQL Code Generator with the shipped scalar map
// (codegen.ts) and strictScalars, on the committed schema.graphql and the
// README's named operations, then a small client type-checked against the
// output: right values compile, a string where a Vector goes does not.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { codegen } from '@graphql-codegen/core';
import * as typescriptOperations from '@graphql-codegen/typescript-operations';
import { buildSchema, parse, validate } from 'graphql';
import { projectRoot } from '../../src/config/paths.ts';
import { config } from '../../codegen.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-codegen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const schemaText = readFileSync(path.join(projectRoot, 'schema.graphql'), 'utf8');
/** The README's GraphQL blocks that hold one named operation. */
const readmeOperations = (): Array<{ name: string; text: string }> =>
  [...readFileSync(path.join(projectRoot, 'README.md'), 'utf8').matchAll(/```graphql\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .filter((text) => /^(query|mutation) [A-Z]\w*/.test(text.trim()))
    .map((text) => ({ name: /^(?:query|mutation) (\w+)/.exec(text.trim())![1]!, text }));

const CLIENT = `
import type { SearchQuery, SearchQueryVariables, IngestMutationVariables, HybridQuery } from './types.ts';

export const search: SearchQueryVariables = { q: [0.1, 0.2, 0.3] };
export const ingest: IngestMutationVariables = { chunks: [{ content: 'c', embedding: [0.5, 0.5], metadata: { section: 'x' } }] };
// @ts-expect-error a Vector is an array of numbers, not a string
export const notAVector: SearchQueryVariables = { q: 'not a vector' };
// @ts-expect-error … and not an array of strings
export const strings: SearchQueryVariables = { q: ['0.1'] };

export function best(result: SearchQuery): { similarity: number; title: string } {
  const top = result.searchDocumentChunks[0]!;
  return { similarity: top.similarity, title: top.chunk.document?.title ?? '' };
}
export function score(result: HybridQuery): number {
  return result.hybridSearchDocumentChunks[0]?.score ?? 0;
}
`;

test("codegen with strictScalars and the shipped scalar map types the README's operations; a small client type-checks against them", async () => {
  const schema = buildSchema(schemaText);
  const operations = readmeOperations();
  expect(operations.map((o) => o.name)).toEqual(expect.arrayContaining(['Ingest', 'Search', 'Hybrid', 'Diverse']));
  // The README's examples are valid against the committed schema.
  for (const op of operations) expect({ name: op.name, errors: validate(schema, parse(op.text)).map((e) => e.message) }).toEqual({ name: op.name, errors: [] });

  const output = await codegen({
    filename: 'types.ts',
    schema: parse(schemaText),
    documents: operations.map((op) => ({ location: `README.md#${op.name}`, document: parse(op.text) })),
    plugins: [{ typescriptOperations: {} }],
    pluginMap: { typescriptOperations },
    config: config.generates['src/gql/types.ts'].config,
  });
  writeFileSync(path.join(dir, 'types.ts'), output);
  // strictScalars is on: without the map, codegen refuses the first scalar it does not know.
  await expect(
    codegen({
      filename: 'types.ts',
      schema: parse(schemaText),
      documents: operations.map((op) => ({ location: `README.md#${op.name}`, document: parse(op.text) })),
      plugins: [{ typescriptOperations: {} }],
      pluginMap: { typescriptOperations },
      config: { ...config.generates['src/gql/types.ts'].config, scalars: {} },
    }),
  ).rejects.toThrow(/Unknown scalar type/);
  writeFileSync(path.join(dir, 'client.ts'), CLIENT);
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        allowImportingTsExtensions: true,
        skipLibCheck: true,
        types: [],
      },
      files: ['client.ts'],
    }),
  );
  const tsc = spawnSync(process.execPath, [path.join(projectRoot, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8', timeout: 120_000 });
  expect({ status: tsc.status, output: tsc.stdout + tsc.stderr }).toEqual({ status: 0, output: '' });
}, 180_000);

// Trusted documents (issue 27 item 2): the manifest of the operations the
// apps may run, `{ "<sha256 of the document>": "<document>" }`, the format of
// GraphQL Code Generator's persisted-documents output and of Apollo's
// persisted queries (the hash is the SHA-256 of the exact text, in hex).
// `npm run trusted-documents` builds it from the clients' .graphql files: one
// document per operation, with the fragments it uses, printed canonically. The
// gateway loads it from TRUSTED_DOCUMENTS (loadTrustedDocuments); the checks
// are plugins/trusted-documents.ts.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { Kind, parse, print, visit, type DefinitionNode, type FragmentDefinitionNode, type OperationDefinitionNode } from 'graphql';

export type TrustedDocuments = Readonly<Record<string, string>>;

export const documentHash = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** The .graphql files under `dir`, recursively, sorted (a stable manifest). */
export async function graphqlFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && /\.(graphql|gql)$/.test(e.name))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** The fragments an operation (or fragment) spreads, transitively. */
function usedFragments(node: DefinitionNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>, seen = new Set<string>()): Set<string> {
  visit(node, {
    FragmentSpread(spread) {
      const name = spread.name.value;
      if (seen.has(name)) return;
      const fragment = fragments.get(name);
      if (!fragment) throw new Error(`the fragment ${name} is used but defined in no .graphql file`);
      seen.add(name);
      usedFragments(fragment, fragments, seen);
    },
  });
  return seen;
}

/**
 * Builds the manifest from GraphQL sources (`{ file, text }`): every named
 * operation becomes one document, itself then the fragments it uses in name
 * order, printed by graphql-js. Two operations of one name are refused.
 */
export function buildTrustedDocuments(sources: ReadonlyArray<{ file: string; text: string }>): TrustedDocuments {
  const operations = new Map<string, { node: OperationDefinitionNode; file: string }>();
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const { file, text } of sources) {
    let doc;
    try {
      doc = parse(text, { noLocation: true });
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
    }
    for (const def of doc.definitions) {
      if (def.kind === Kind.FRAGMENT_DEFINITION) {
        if (fragments.has(def.name.value)) throw new Error(`${file}: the fragment ${def.name.value} is defined twice`);
        fragments.set(def.name.value, def);
      } else if (def.kind === Kind.OPERATION_DEFINITION) {
        const name = def.name?.value;
        if (!name) throw new Error(`${file}: every operation needs a name (the manifest and the logs know it by its name)`);
        const other = operations.get(name);
        if (other) throw new Error(`${file}: the operation ${name} is also defined in ${other.file}`);
        operations.set(name, { node: def, file });
      } else {
        throw new Error(`${file}: only operations and fragments belong in a client's .graphql files`);
      }
    }
  }
  const manifest: Record<string, string> = {};
  for (const [, { node }] of [...operations].sort(([a], [b]) => a.localeCompare(b))) {
    const names = [...usedFragments(node, fragments)].sort();
    const text = [node, ...names.map((n) => fragments.get(n)!)].map((d) => print(d)).join('\n\n');
    manifest[documentHash(text)] = text;
  }
  return manifest;
}

/** The manifest of every .graphql file under `dir`. */
export async function trustedDocumentsOf(dir: string): Promise<TrustedDocuments> {
  const files = await graphqlFiles(dir);
  if (files.length === 0) throw new Error(`no .graphql files under ${dir}`);
  return buildTrustedDocuments(await Promise.all(files.map(async (file) => ({ file, text: await readFile(file, 'utf8') }))));
}

/** Checks a manifest (ours, or GraphQL Code Generator's persisted-documents.json): each key is the SHA-256 of its document, each document parses. */
export function checkTrustedDocuments(value: unknown, source: string): TrustedDocuments {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`${source}: a manifest is a JSON object of "<sha256>": "<document>"`);
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) throw new Error(`${source}: the manifest holds no document`);
  for (const [hash, text] of entries) {
    if (typeof text !== 'string') throw new Error(`${source}: the document of ${hash} is not a string`);
    if (documentHash(text) !== hash) throw new Error(`${source}: ${hash} is not the SHA-256 of its document (rebuild it: npm run trusted-documents)`);
    try {
      parse(text, { noLocation: true });
    } catch (err) {
      throw new Error(`${source}: the document of ${hash} does not parse: ${(err as Error).message}`, { cause: err });
    }
  }
  return Object.freeze(Object.fromEntries(entries)) as TrustedDocuments;
}

/** TRUSTED_DOCUMENTS: the manifest at `file`, checked (a bad one stops the gateway at start, naming the file and the entry). */
export function loadTrustedDocuments(file: string): TrustedDocuments {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`TRUSTED_DOCUMENTS: cannot read the manifest ${file}: ${(err as Error).message}`, { cause: err });
  }
  return checkTrustedDocuments(value, `TRUSTED_DOCUMENTS (${file})`);
}

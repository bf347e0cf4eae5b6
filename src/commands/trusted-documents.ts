import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkTrustedDocuments, trustedDocumentsOf } from '../graphql/trusted-documents.ts';
import type { Command } from './command.ts';

export const trustedDocuments: Command = {
  name: 'trusted-documents',
  summary: "build the manifest of the apps' operations (TRUSTED_DOCUMENTS)",
  usage: `npm run trusted-documents [-- --from clients] [--out clients/trusted-documents.json]
  --from  a folder of the apps' .graphql files (searched recursively; default clients), one document
          per named operation with the fragments it uses; or GraphQL Code Generator's
          persisted-documents.json, checked and copied
  --out   where to write the manifest, { "<sha256 of the document>": "<document>" } (default
          clients/trusted-documents.json); point TRUSTED_DOCUMENTS at it: a production gateway
          then runs these operations only, sent by hash (extensions.persistedQuery.sha256Hash)
`,
  async run(_config, args) {
    const { values } = parseArgs({
      args,
      options: { from: { type: 'string', default: 'clients' }, out: { type: 'string', default: 'clients/trusted-documents.json' } },
    });
    const from = path.resolve(values.from);
    const manifest = (await stat(from)).isDirectory()
      ? await trustedDocumentsOf(from)
      : checkTrustedDocuments(JSON.parse(await readFile(from, 'utf8')) as unknown, from);
    await writeFile(path.resolve(values.out), `${JSON.stringify(manifest, null, 2)}\n`);
    process.stdout.write(`wrote ${Object.keys(manifest).length} trusted documents to ${values.out}\n`);
  },
};

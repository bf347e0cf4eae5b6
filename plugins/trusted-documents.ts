// Trusted documents (issue 27 item 2): with a manifest (grafserv's
// `persistedOperations`, `{ sha256: document }`, src/graphql/trusted-documents.ts)
// @grafserv/persisted's PersistedPlugin turns a request's hash
// (`extensions.persistedQuery.sha256Hash` as Apollo and urql send it,
// `documentId`, or `id`) into its document; this plugin, ahead of it, says
// why a request is refused, by code, before anything is parsed:
// - a hash not in the manifest: PERSISTED_QUERY_NOT_FOUND (the code Apollo's
//   persisted-query link understands);
// - a document sent as text: allowed when the manifest holds exactly that text;
//   otherwise, when `sheratanTrustedDocumentsOnly` is on (production),
//   TRUSTED_DOCUMENT_REQUIRED. In development anything else runs (Ruru,
//   introspection, a query being written), hashes resolve all the same.
// Over HTTP and over the socket alike (grafserv runs processGraphQLRequestBody for both).
import { createHash } from 'node:crypto';
import { PersistedPlugin } from '@grafserv/persisted';
import { SafeError } from 'postgraphile/grafast';

export const PERSISTED_QUERY_NOT_FOUND = 'PERSISTED_QUERY_NOT_FOUND';
export const TRUSTED_DOCUMENT_REQUIRED = 'TRUSTED_DOCUMENT_REQUIRED';

declare global {
  namespace GraphileConfig {
    interface GrafservOptions {
      /** Refuse every document not in `persistedOperations` (production with TRUSTED_DOCUMENTS). */
      sheratanTrustedDocumentsOnly?: boolean;
    }
  }
}

interface Body {
  query?: unknown;
  documentId?: unknown;
  id?: unknown;
  extensions?: unknown;
}

/** The hash a request names, as PersistedPlugin reads it. */
const hashOf = (body: Body | undefined): unknown =>
  (body?.extensions as { persistedQuery?: { sha256Hash?: unknown } } | null | undefined)?.persistedQuery?.sha256Hash || body?.documentId || body?.id;

/** Whether the manifest holds exactly this text (under its SHA-256, the manifest's key). */
const knownText = (manifest: Readonly<Record<string, string>>, text: string): boolean =>
  manifest[createHash('sha256').update(text, 'utf8').digest('hex')] === text;

/** Whether a request may run a document sent as text (PersistedPlugin's allowUnpersistedOperation). */
export function allowsText(options: GraphileConfig.GrafservOptions | undefined, body: Body | undefined): boolean {
  if (!options?.sheratanTrustedDocumentsOnly) return true;
  const manifest = options.persistedOperations;
  return typeof body?.query === 'string' && manifest !== undefined && knownText(manifest, body.query);
}

const refuse = (message: string, code: string): never => {
  throw new SafeError(message, { code, statusCode: 400 });
};

export const TrustedDocumentsCheckPlugin: GraphileConfig.Plugin = {
  name: 'SheratanTrustedDocumentsPlugin',
  version: '1.0.0',
  description: 'Refuses, by code and before parsing, a hash not in the manifest and (in production) a document not in it',
  // Ahead of PersistedPlugin (which only says "please provide an approved document id"), and of the
  // request limits: an unlisted document is refused as such, whatever its size.
  before: ['SheratanRequestLimitsPlugin', 'PersistedPlugin'],
  grafserv: {
    middleware: {
      processGraphQLRequestBody(next, event) {
        const options = event.resolvedPreset.grafserv;
        const manifest = options?.persistedOperations;
        if (!manifest) return next();
        const body = event.body as Body;
        const hash = hashOf(body);
        if (hash !== undefined && hash !== null && hash !== '') {
          if (typeof hash !== 'string' || !Object.hasOwn(manifest, hash)) {
            const shown = typeof hash === 'string' ? JSON.stringify(hash.slice(0, 80)) : `of type ${typeof hash}`;
            refuse(
              `PersistedQueryNotFound: no trusted document has the hash ${shown} (the manifest is built by npm run trusted-documents)`,
              PERSISTED_QUERY_NOT_FOUND,
            );
          }
          return next();
        }
        if (!allowsText(options, body)) {
          refuse(
            'this server runs only trusted documents: send the hash of an operation in its manifest (extensions.persistedQuery.sha256Hash, or documentId), not a document it does not hold',
            TRUSTED_DOCUMENT_REQUIRED,
          );
        }
        return next();
      },
    },
  },
};

/** The two plugins an endpoint with a manifest adds (endpoint-preset.ts): our check, then PersistedPlugin's lookup. */
export const TrustedDocumentsPlugins: readonly GraphileConfig.Plugin[] = [TrustedDocumentsCheckPlugin, PersistedPlugin];

// The store's tables, and the foreign key that deletes a document's chunks with it.
import type { DoctorCheck } from './types.ts';

export const TABLES = ['documents', 'document_chunks', 'jobs', 'audit_logs', 'search_logs', 'embedding_models'];

export const tables: DoctorCheck = {
  name: 'tables',
  async run(ctx) {
    const present = await ctx.tables();
    const missing = TABLES.filter((t) => !present.includes(t));
    return missing.length
      ? { name: 'tables', status: 'fail', detail: `missing: ${missing.join(', ')}`, fix: 'npm run db:migrate' }
      : { name: 'tables', status: 'ok', detail: TABLES.join(', ') };
  },
};

export const cascadeForeignKey: DoctorCheck = {
  name: 'cascade foreign key',
  async run({ client }) {
    const fk = (
      await client.query<{ conname: string; confdeltype: string }>(`
        select conname, confdeltype from pg_constraint
         where contype = 'f' and conrelid = to_regclass('sheratan.document_chunks') and confrelid = to_regclass('sheratan.documents')`)
    ).rows[0];
    if (fk?.confdeltype === 'c') {
      return { name: 'cascade foreign key', status: 'ok', detail: `${fk.conname}: document_chunks.document_id → documents ON DELETE CASCADE` };
    }
    return {
      name: 'cascade foreign key',
      status: 'fail',
      detail: fk
        ? `${fk.conname} exists without ON DELETE CASCADE: deleting a document with chunks fails`
        : 'document_chunks.document_id has no foreign key to documents',
      fix:
        (fk ? `ALTER TABLE sheratan.document_chunks DROP CONSTRAINT ${fk.conname}; ` : '') +
        'ALTER TABLE sheratan.document_chunks ADD CONSTRAINT document_chunks_document_id_fkey FOREIGN KEY (document_id) REFERENCES sheratan.documents (id) ON DELETE CASCADE;',
    };
  },
};

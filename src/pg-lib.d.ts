// node-postgres's own result builder and value serializer, which the engine
// channel client reuses so its results match the `pg` adaptor's exactly.
declare module 'pg/lib/result.js' {
  import type { FieldDef } from 'pg';
  export default class Result {
    constructor(rowMode: 'array' | undefined, types: unknown);
    rows: unknown[];
    rowCount: number | null;
    addFields(fields: unknown): void;
    parseRow(fields: unknown): unknown;
    addRow(row: unknown): void;
    addCommandComplete(msg: unknown): void;
    fields: FieldDef[];
  }
}
declare module 'pg/lib/utils.js' {
  const utils: { prepareValue(value: unknown): unknown };
  export default utils;
}

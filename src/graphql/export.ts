// The committed, sorted SDL of both endpoints: the public contract.
import { lexicographicSortSchema, printSchema } from 'graphql';
import pg from 'pg';
import { postgraphile } from 'postgraphile';
import type { Config } from '../config/config.ts';
import type { Database } from '../database/connect.ts';
import { APP_ROLE, READONLY_ROLE } from '../config/roles.ts';
import { ReportingPreset, SheratanPreset } from '../../plugins/preset.ts';
import { endpointPreset } from './endpoint-preset.ts';

export async function exportSchemas(config: Config, db: Database): Promise<{ api: string; reporting: string }> {
  const pool = new pg.Pool({ connectionString: db.authUrl, max: 2 });
  try {
    const print = async (readOnly: boolean): Promise<string> => {
      const instance = postgraphile(
        endpointPreset(readOnly ? ReportingPreset : SheratanPreset, config, { pool, role: readOnly ? READONLY_ROLE : APP_ROLE, graphqlPath: '/graphql' }),
      );
      try {
        return `${printSchema(lexicographicSortSchema(await instance.getSchema()))}\n`;
      } finally {
        await instance.release();
      }
    };
    return { api: await print(false), reporting: await print(true) };
  } finally {
    await pool.end();
  }
}

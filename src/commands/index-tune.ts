import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config.ts';
import { withPgClient } from '../database/connect.ts';
import { describeAnnIndex, formatAnnIndex, INDEX_KINDS, kindOf, rebuildAnnIndex, specForKind, type AnnSpec, type IndexKind } from '../database/ann-index.ts';
import { usingDatabase, type Command } from './command.ts';
import { log } from '../config/log.ts';
import { withMaintenance } from '../database/maintenance.ts';
import { indexBuildProgress, Progress, progressLines, withProgress } from '../operations/progress.ts';

/** A whole-number option within [min, max], or undefined when not given. */
function whole(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`--${name} must be a whole number from ${min} to ${max}, not "${raw}"`);
  return n;
}

export const indexTune: Command = {
  name: 'index:tune',
  summary: 'show or rebuild the ANN index',
  usage: `npm run index:tune [-- step]   show the ANN index on document_chunks.embedding, or rebuild it (it keeps its name)

  --hnsw [--m 16] [--ef-construction 64]   HNSW with these parameters
  --ivfflat [--lists N]                    IVFFlat (lists: rows / 1000 unless given; needs data)
  --kind ${INDEX_KINDS.join('|')}     the kind VECTOR_INDEX names
  --maintenance-work-mem 512MB             memory for the build
  On a server the rebuild is CONCURRENTLY: writes go on meanwhile.
`,
  async run(config, args) {
    const { values } = parseArgs({
      args,
      options: {
        hnsw: { type: 'boolean' },
        ivfflat: { type: 'boolean' },
        kind: { type: 'string' },
        m: { type: 'string', default: '16' },
        'ef-construction': { type: 'string', default: '64' },
        lists: { type: 'string' },
        'maintenance-work-mem': { type: 'string', default: '512MB' },
      },
    });
    if ([values.hnsw, values.ivfflat, values.kind].filter(Boolean).length > 1) throw new ConfigError('choose one of --hnsw, --ivfflat and --kind');
    if (values.kind !== undefined && !(INDEX_KINDS as readonly string[]).includes(values.kind)) {
      throw new ConfigError(`--kind must be one of ${INDEX_KINDS.join(', ')}, not "${values.kind}"`);
    }
    const hnsw = () => ({ m: whole('m', values.m, 2, 100)!, efConstruction: whole('ef-construction', values['ef-construction'], 4, 1000)! });
    let spec: AnnSpec | null = null;
    if (values.hnsw) spec = { method: 'hnsw', ...hnsw() };
    if (values.ivfflat) spec = { method: 'ivfflat', lists: whole('lists', values.lists, 1, 32768) };
    if (values.kind) {
      const base = specForKind(values.kind as IndexKind, whole('lists', values.lists, 1, 32768));
      spec = base.method === 'hnsw' ? { ...base, ...hnsw() } : base;
    }
    await usingDatabase(config, 'index:tune', (db) =>
      withPgClient(db.ownerUrl, async (client) => {
        if (spec) {
          const started = Date.now();
          const rows = (await client.query<{ n: number }>('select count(*)::int as n from sheratan.document_chunks where embedding is not null')).rows[0]!.n;
          if (db.backend === 'embedded' && rows > 0) {
            // Said before the wait, not after: the API is unavailable while the build runs (README "Maintenance on the embedded engine").
            const note =
              "the embedded engine runs one statement at a time: until the build ends, the gateway's requests wait and /readyz answers 503 (maintenance) " +
              `(measured on 2 shared cores: 41-50 s for 20,000 chunks, 11 minutes for 200,000; ${rows.toLocaleString('en-US')} chunks here)`;
            if (process.stderr.isTTY) process.stderr.write(`note: ${note}\n`);
            else log('warn', `index:tune: ${note}`);
          }
          const progress = new Progress('index build', { unit: 'tuples', total: rows || null, lines: progressLines(config.logLevel) });
          const rebuild = () => rebuildAnnIndex(client, spec!, { concurrently: db.backend === 'server', maintenanceWorkMem: values['maintenance-work-mem'] });
          // Embedded, the gateway's /readyz says 503 with the reason while the build holds the engine
          // (expected time from bench:maintenance: 2.1-3.3 ms a chunk on 2 shared cores, 20,000 to 200,000 chunks).
          const building =
            db.backend === 'embedded'
              ? withMaintenance(
                  config.dataDir,
                  `rebuilding the ANN index over ${rows.toLocaleString('en-US')} chunks (npm run index:tune)`,
                  Math.ceil(rows * 0.003) + 5,
                  rebuild,
                )
              : rebuild();
          building.catch(() => undefined); // handled by withProgress; this only keeps it from counting as unhandled meanwhile
          // A server reports the build's progress to another session; the embedded engine runs one
          // statement at a time (a second session would wait for the build), so there only the time shows.
          const using =
            db.backend === 'server'
              ? await withPgClient(db.ownerUrl, (watcher) => withProgress(progress, building, () => indexBuildProgress(watcher, 'sheratan.document_chunks')))
              : await withProgress(progress, building);
          process.stdout.write(`rebuilt the ANN index as ${using} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        }
        const index = await describeAnnIndex(client);
        process.stdout.write(formatAnnIndex(index));
        // VECTOR_INDEX says what the index should be (doctor compares them; a start on an empty table builds it):
        // after a rebuild to another kind, the configuration must follow.
        if (spec && index && kindOf(index) !== config.vectorIndex) {
          process.stdout.write(
            `set VECTOR_INDEX=${kindOf(index)} (in .env or the environment) to keep this index: VECTOR_INDEX is ${config.vectorIndex} (hnsw when unset), ` +
              'so doctor reports the difference and a start on a table without embeddings builds that kind again\n',
          );
        }
      }),
    );
  },
};

import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config.ts';
import { withPgClient } from '../database/connect.ts';
import { embeddingColumns } from '../database/vector-column.ts';
import {
  dropEmbeddingColumn,
  embeddingModelStatus,
  formatEmbeddingStatus,
  queueReembedAll,
  queueReembedJobs,
  REEMBED_JOB_TYPE,
  startEmbeddingMigration,
  switchEmbeddingModel,
} from '../operations/embedding-models.ts';
import { usingDatabase, type Command } from './command.ts';

export const embeddingsMigrate: Command = {
  name: 'embeddings:migrate',
  summary: 'change the embedding model without downtime',
  usage: `npm run embeddings:migrate -- [step]   change the embedding model without downtime

  --dimension N --name MODEL [--live-name NAME] [--jobs]
                    add embedding_next vector(N) and its index beside the live embedding
                    (the live model is recorded as NAME, default "initial")
  --jobs            queue one ${REEMBED_JOB_TYPE} job per document still missing new vectors
  --switch [--force]
                    make the new embedding live (refused while chunks miss it, unless --force)
  --drop-previous   drop the old embedding, kept as embedding_previous after the switch
  --cancel          drop embedding_next: the migration never happened
  --reembed         embed every document again with the configured provider (same dimension),
                    through the embedding workers (the gateway's and npm run worker); progress:
                    the vectorizerStatus query
  (no step)         show the models and the progress
`,
  async run(config, args) {
    const { values } = parseArgs({
      args,
      options: {
        dimension: { type: 'string' },
        name: { type: 'string' },
        'live-name': { type: 'string', default: 'initial' },
        jobs: { type: 'boolean' },
        switch: { type: 'boolean' },
        force: { type: 'boolean' },
        'drop-previous': { type: 'boolean' },
        cancel: { type: 'boolean' },
        status: { type: 'boolean' },
        reembed: { type: 'boolean' },
      },
    });
    const starting = values.dimension !== undefined || values.name !== undefined;
    const steps = [starting, values.switch, values['drop-previous'], values.cancel, values.reembed].filter(Boolean).length;
    if (steps > 1) throw new ConfigError('choose one step: --dimension/--name (start), --switch, --drop-previous, --cancel or --reembed');
    if (starting && (values.dimension === undefined || values.name === undefined))
      throw new ConfigError('starting a model switch takes both --dimension and --name');
    const dimension = values.dimension === undefined ? undefined : Number(values.dimension);
    if (dimension !== undefined && (!Number.isInteger(dimension) || dimension < 1 || dimension > 4000)) {
      throw new ConfigError(`--dimension must be a whole number from 1 to 4000, not "${values.dimension}"`);
    }
    await usingDatabase(config, 'embeddings:migrate', (db) =>
      withPgClient(db.ownerUrl, async (client) => {
        if (starting) {
          await startEmbeddingMigration(client, values.name!, dimension!, values['live-name']);
          process.stdout.write(
            `added embedding_next vector(${dimension}) and its index for ${values.name}; searches keep using the live embedding\n` +
              `store the new vectors with the storeEmbeddings mutation (running gateways accept ${dimension}-dimension vectors within seconds)\n`,
          );
        } else if (values.switch) {
          const left = await switchEmbeddingModel(client, values.force ?? false);
          process.stdout.write(
            `switched: searches now use the new model's embedding${left ? ` (${left} chunks have none)` : ''}; ` +
              `send queries of its dimension, then set VECTOR_DIMENSION to it; the old column is kept as embedding_previous until --drop-previous\n`,
          );
        } else if (values['drop-previous']) {
          await dropEmbeddingColumn(client, 'previous');
          process.stdout.write('dropped embedding_previous and its index\n');
        } else if (values.reembed) {
          const { model, documents } = await queueReembedAll(client);
          process.stdout.write(`queued ${documents} document(s) to be embedded again with ${model} by the embedding workers\n`);
        } else if (values.cancel) {
          await dropEmbeddingColumn(client, 'next');
          process.stdout.write('cancelled: dropped embedding_next and its index; searches were not affected\n');
        }
        const status = await embeddingModelStatus(client);
        if (values.jobs) {
          const next = status.models.find((m) => m.state === 'next');
          if (!next) throw new ConfigError('--jobs needs a model switch in progress (start one with --dimension and --name)');
          const queued = await queueReembedJobs(client, next.name, next.dimension);
          process.stdout.write(`queued ${queued} ${REEMBED_JOB_TYPE} job(s), one per document still missing ${next.name} vectors\n`);
        }
        process.stdout.write(formatEmbeddingStatus(status, (await embeddingColumns(client)).live!));
      }),
    );
  },
};

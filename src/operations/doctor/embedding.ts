// The embedding column against VECTOR_DIMENSION, the provider against the column, and a model switch under way.
import { checkEmbeddingProvider, ProviderCheckError } from '../../embedding/check.ts';
import { createEmbeddingProvider } from '../../embedding/provider.ts';
import type { Config } from '../../config/config.ts';
import { embeddingModelStatus } from '../embedding-models.ts';
import type { Check, DoctorCheck } from './types.ts';

export const embeddingDimension: DoctorCheck = {
  name: 'embedding dimension',
  async run(ctx) {
    const dim = await ctx.embeddingDimension();
    const { vectorDimension } = ctx.config;
    if (dim == null) {
      return { name: 'embedding dimension', status: 'fail', detail: 'sheratan.document_chunks.embedding does not exist', fix: 'npm run db:migrate' };
    }
    if (dim !== vectorDimension) {
      return {
        name: 'embedding dimension',
        status: 'fail',
        detail: `VECTOR_DIMENSION is ${vectorDimension} but the column is vector(${dim}): inserts fail with "expected ${dim} dimensions, not ${vectorDimension}"`,
        fix:
          `set VECTOR_DIMENSION=${dim} to match the column (after an embedding model switch, the new model's dimension); ` +
          `to change the model, npm run embeddings:migrate -- --dimension ${vectorDimension} --name <model> (README, "Changing the embedding model")`,
      };
    }
    return { name: 'embedding dimension', status: 'ok', detail: `vector(${dim}) = VECTOR_DIMENSION` };
  },
};

/** The provider answers with the column's dimension: the check `npm start` makes (src/embedding/check.ts). Nothing without the column. */
export const embeddingProvider: DoctorCheck = {
  name: 'embedding provider',
  async run(ctx) {
    const dim = await ctx.embeddingDimension();
    return dim == null ? [] : providerCheck(ctx.config, dim);
  },
};

async function providerCheck(config: Config, column: number): Promise<Check> {
  const name = 'embedding provider';
  const provider = createEmbeddingProvider(config);
  try {
    return { name, status: 'ok', detail: await checkEmbeddingProvider(provider, column) };
  } catch (err) {
    if (err instanceof ProviderCheckError) return { name, status: 'fail', detail: err.detail, fix: err.fix };
    return { name, status: 'fail', detail: (err as Error).message };
  } finally {
    await provider?.close();
  }
}

/** A warning while a model switch is under way or its old column is kept; nothing otherwise (or without the table). */
export const embeddingModelSwitch: DoctorCheck = {
  name: 'embedding model switch',
  async run(ctx) {
    if (!(await ctx.tables()).includes('embedding_models')) return [];
    const status = await embeddingModelStatus(ctx.client);
    const next = status.models.find((m) => m.state === 'next');
    const previous = status.models.find((m) => m.state === 'previous');
    if (next) {
      const total = status.embedded! + status.missing!;
      return {
        name: 'embedding model switch',
        status: 'warn',
        detail: `migrating to ${next.name} (vector(${next.dimension})): ${status.embedded} of ${total} chunks have its embedding, ${status.missing} to go; searches use the live embedding`,
        fix: status.missing
          ? 'store the new vectors with the storeEmbeddings mutation (or npm run embeddings:migrate -- --jobs and a worker), then npm run embeddings:migrate -- --switch'
          : 'every chunk has its new embedding: npm run embeddings:migrate -- --switch',
      };
    }
    if (previous) {
      return {
        name: 'embedding model switch',
        status: 'warn',
        detail: `switched from ${previous.name} (vector(${previous.dimension})), whose column is still kept as embedding_previous`,
        fix: "once no client sends the old model's vectors: npm run embeddings:migrate -- --drop-previous",
      };
    }
    return [];
  },
};

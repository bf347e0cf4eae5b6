import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config.ts';
import { log } from '../config/log.ts';
import { openDatabase } from '../database/connect.ts';
import { createTextServices } from '../embedding/worker-context.ts';
import { EMBED_JOB_TYPE } from '../embedding/worker.ts';
import { untilSignal, type Command } from './command.ts';

export const worker: Command = {
  name: 'worker',
  summary: 'run embedding jobs (chunk and embed changed text) beside the gateways',
  usage: `npm run worker -- [--concurrency N]   run ${EMBED_JOB_TYPE} jobs for every tenant until SIGTERM/SIGINT

  Chunks and embeds the documents whose text changed (queued by the database's
  triggers) with the configured EMBEDDING_PROVIDER, as the API role within each
  job's tenant (it logs in as the gateway does: AUTH_DATABASE_URL). Run as many
  as you like on as many machines; each gateway also runs one
  (EMBEDDING_WORKER_CONCURRENCY, 0 turns it off).

  --concurrency N   jobs at once (default EMBEDDING_WORKER_CONCURRENCY, at least 1)
`,
  async run(config, args) {
    const { values } = parseArgs({ args, options: { concurrency: { type: 'string' } } });
    const concurrency = values.concurrency === undefined ? Math.max(1, config.embeddingWorkerConcurrency) : Number(values.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
      throw new ConfigError(`--concurrency must be a whole number from 1 to 64, not "${values.concurrency}"`);
    }
    if (config.embeddingProvider === 'none') {
      throw new ConfigError('npm run worker needs an embedding provider: EMBEDDING_PROVIDER is none (clients bring vectors); set it to local or openai');
    }
    const db = await openDatabase(config, { purpose: 'embedding worker' });
    const text = createTextServices({ ...config, embeddingWorkerConcurrency: concurrency });
    try {
      await text.startWorker(db.authUrl);
      log('info', 'embedding worker running', { workerId: text.worker?.workerId, concurrency, model: text.provider?.model });
      await untilSignal(async (signal) => {
        log('info', 'embedding worker stopping', { signal });
      });
    } finally {
      await text.close();
      await db.close();
    }
    log('info', 'embedding worker stopped', { passes: text.worker?.stats.passes });
  },
};

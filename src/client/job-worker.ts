// A small job worker for the GraphQL API: claims jobs of the given types,
// runs the handler, completes or fails each job, and on SIGTERM/SIGINT stops
// claiming and lets running jobs finish.
//
//   const worker = runWorker({ url: 'http://127.0.0.1:5678/graphql', token, jobTypes: ['embed'],
//                              concurrency: 4, handler: async (job) => ({ ok: true }) });
//   await worker.stopped;
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { graphqlRequest } from './request.ts';

export interface ClaimedJob {
  rowId: string;
  jobType: string;
  payload: unknown;
  attempts: number;
  maxAttempts: number;
}

export interface WorkerOptions {
  /** The gateway's GraphQL endpoint. */
  url: string;
  /**
   * A `sheratan_app` token for the tenant whose jobs to run, with a `sub`: the
   * jobs it claims belong to that subject, and only it may complete or fail them.
   */
  token: string;
  /** Job types to claim; all types when omitted. */
  jobTypes?: string[];
  /** Runs one job; its return value becomes the job's result, a throw fails the attempt. */
  handler: (job: ClaimedJob) => Promise<unknown>;
  /** Jobs run at once (default 1). */
  concurrency?: number;
  workerId?: string;
  /** Wait between claims when the queue is empty (default 1000 ms). */
  pollIntervalMs?: number;
  /** Stop on SIGTERM/SIGINT (default true). */
  handleSignals?: boolean;
  /** Called for errors talking to the gateway; the worker keeps going. */
  onError?: (error: Error) => void;
}

export interface RunningWorker {
  workerId: string;
  /** Stops claiming; resolves when every running job has finished. */
  stop(): Promise<void>;
  /** Resolves once the worker has stopped. */
  stopped: Promise<void>;
}

const JOB_FIELDS = 'rowId jobType payload attempts maxAttempts';

/**
 * The token's `sub` claim, when the token is a JWT (its payload is readable
 * without the secret); undefined when it has none, null when it is no JWT.
 */
function tokenSubject(token: string): string | undefined | null {
  const payload = token.split('.')[1];
  if (payload === undefined) return null;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof claims.sub === 'string' && claims.sub !== '' ? claims.sub : undefined;
  } catch {
    return null;
  }
}

export function runWorker(options: WorkerOptions): RunningWorker {
  // A job belongs to the subject that claims it, so the gateway refuses every
  // claim of a token without one: say so once, here, rather than on every poll.
  if (tokenSubject(options.token) === undefined) {
    throw new Error(
      'runWorker: the token has no "sub" claim; claiming jobs needs one, since a job belongs to the subject that claims it (npm run token -- --sub worker-1)',
    );
  }
  const workerId = options.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const poll = options.pollIntervalMs ?? 1000;
  let stopping = false;
  const sleepers = new Set<() => void>();

  const call = <T>(query: string, variables: Record<string, unknown>): Promise<T> => graphqlRequest<T>(options, query, variables);

  const claim = async (): Promise<ClaimedJob | null> =>
    (
      await call<{ claimJob: { job: ClaimedJob | null } }>(
        `mutation ($workerId: String!, $jobTypes: [String]) { claimJob(input: { workerId: $workerId, jobTypes: $jobTypes }) { job { ${JOB_FIELDS} } } }`,
        { workerId, jobTypes: options.jobTypes ?? null },
      )
    ).claimJob.job;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });

  async function slot(): Promise<void> {
    while (!stopping) {
      let job: ClaimedJob | null;
      try {
        job = await claim();
      } catch (err) {
        options.onError?.(err as Error);
        await sleep(poll);
        continue;
      }
      if (!job) {
        await sleep(poll);
        continue;
      }
      try {
        const result = await options.handler(job);
        await call('mutation ($id: BigInt!, $w: String!, $r: JSON) { completeJob(input: { jobId: $id, workerId: $w, result: $r }) { clientMutationId } }', {
          id: job.rowId,
          w: workerId,
          r: result ?? null,
        });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        await call('mutation ($id: BigInt!, $w: String!, $e: String!) { failJob(input: { jobId: $id, workerId: $w, error: $e }) { clientMutationId } }', {
          id: job.rowId,
          w: workerId,
          e: message,
        }).catch((e: Error) => options.onError?.(e));
      }
    }
  }

  const stopped = Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 1) }, () => slot())).then(() => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  });
  const stop = (): Promise<void> => {
    stopping = true;
    for (const done of [...sleepers]) done();
    return stopped;
  };
  function onSignal(): void {
    void stop();
  }
  if (options.handleSignals ?? true) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  return { workerId, stop, stopped };
}

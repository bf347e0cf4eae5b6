// Subscriptions (issue 27): a job's status, a document's changes and its
// embedding status, over graphql-ws on /graphql. Each field listens (grafast's
// listen() step) on the context's `sheratanLive` subscriber for a topic in the
// caller's own tenant, the token's claim as pgSettings carry it, so an event
// of another tenant is never on the subscription's stream. An event names a
// row, never its data: the row is read again for every event as the
// subscriber, with its role and tenant, under row-level security (a row the
// subscriber may not read is null).
import type { PgResource } from 'postgraphile/@dataplan/pg';
import { context, get, lambda, listen, type FieldArgs, type GrafastSubscriber, type Step } from 'postgraphile/grafast';
import { extendSchema, gql } from 'postgraphile/utils';

/** What a subscription follows: a job's status, a document's changes, or a document's embedding status. */
export const LIVE_KINDS = ['job', 'document', 'embedding'] as const;
export type LiveKind = (typeof LIVE_KINDS)[number];

/** A topic names kind, row (or every row) and tenant; the tenant goes last, as it may hold any character (src/graphql/live-events.ts reads it). */
export const liveTopic = (kind: LiveKind, id: string | null | undefined, tenant: string): string => `${kind}|${id ?? ''}|${tenant}`;

declare global {
  namespace Grafast {
    interface Context {
      /** The live events subscriptions listen to (src/graphql/live-events.ts); none: no subscriptions. */
      sheratanLive?: GrafastSubscriber;
    }
  }
}

function topicPlan(kind: LiveKind, $rowId: Step) {
  return lambda([$rowId, context()], ([rowId, ctx]: readonly [unknown, Grafast.Context]) => {
    const tenant = ctx.pgSettings?.['jwt.claims.tenant'];
    // The anonymous role is refused before this (plugins/authentication-required.ts, and the socket itself).
    if (!tenant) throw new Error('subscriptions need a token with a tenant');
    return liveTopic(kind, rowId == null ? null : String(rowId), tenant);
  });
}

export const LivePlugin = extendSchema((build) => {
  const resources = build.input.pgRegistry.pgResources as Record<string, PgResource>;
  const jobs = resources.jobs;
  const documents = resources.documents;
  if (!jobs || !documents) throw new Error('LivePlugin needs the tables sheratan.jobs and sheratan.documents');
  const subscribe = (kind: LiveKind) =>
    function subscribePlan(_$root: Step, fieldArgs: FieldArgs) {
      const $live = context().get('sheratanLive') as Step<GrafastSubscriber | null>;
      return listen($live, topicPlan(kind, fieldArgs.getRaw('rowId')), ($event) => $event);
    };
  const self = ($event: Step) => $event;
  return {
    typeDefs: gql`
      """
      What happened to the row an event is about.
      """
      enum LiveOperation {
        INSERT
        UPDATE
        DELETE
      }

      """
      A job was enqueued or its status changed (pending, running, completed, failed).
      """
      type JobEvent {
        operation: LiveOperation!
        "The job's rowId."
        jobRowId: BigInt!
        "The job as it is now, read as the subscriber (null once it is gone)."
        job: Job
      }

      """
      A document was stored, changed or deleted (or, for documentEmbeddingChanged, its embeddingStatus changed).
      """
      type DocumentEvent {
        operation: LiveOperation!
        "The document's rowId."
        documentRowId: UUID!
        "The document as it is now, read as the subscriber (null once it is deleted)."
        document: Document
      }

      extend type Subscription {
        """
        Each job of the caller's tenant enqueued or changing status; with rowId, that job only.
        """
        jobChanged(rowId: BigInt): JobEvent!

        """
        Each document of the caller's tenant stored, changed or deleted; with rowId, that document only.
        """
        documentChanged(rowId: UUID): DocumentEvent!

        """
        Each document of the caller's tenant stored or whose embeddingStatus changed (PENDING, EMBEDDED, FAILED); with rowId, that document only.
        """
        documentEmbeddingChanged(rowId: UUID): DocumentEvent!
      }
    `,
    objects: {
      Subscription: {
        plans: {
          jobChanged: { subscribePlan: subscribe('job'), plan: self },
          documentChanged: { subscribePlan: subscribe('document'), plan: self },
          documentEmbeddingChanged: { subscribePlan: subscribe('embedding'), plan: self },
        },
      },
      JobEvent: {
        plans: {
          operation: ($event) => get($event, 'op'),
          jobRowId: ($event) => get($event, 'id'),
          job: ($event) => jobs.get({ id: get($event, 'id') as Step }),
        },
      },
      DocumentEvent: {
        plans: {
          operation: ($event) => get($event, 'op'),
          documentRowId: ($event) => get($event, 'id'),
          document: ($event) => documents.get({ id: get($event, 'id') as Step }),
        },
      },
    },
  };
}, 'SheratanLivePlugin');

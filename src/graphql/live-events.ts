// The live events subscriptions listen to (plugins/live.ts, through grafast's
// listen() step): one LISTEN connection per gateway process, on the channels of
// the tenants whose sockets subscribed (named by the SQL's
// sheratan_private.live_channel, a keyed hash), fanned out to each subscription whose
// topic the event matches. An event carries kind, operation, id and tenant,
// never the row: the plan re-reads the row as the subscriber, under row-level
// security. PostGraphile's own PgSubscriber would do the LISTEN, but it keeps
// every event a subscriber has not taken yet; here a subscription that falls
// more than `maxQueued` events behind is ended (a slow consumer is dropped,
// not buffered without bound).
import pg from 'pg';
import type { GrafastSubscriber } from 'grafast';
import { LIVE_KINDS, type LiveKind } from '../../plugins/live.ts';

export { liveTopic, type LiveKind } from '../../plugins/live.ts';

/** An event as the SQL trigger announces it (sheratan_private.tg__live_notify). */
export interface LiveEvent {
  kind: 'job' | 'document';
  op: 'INSERT' | 'UPDATE' | 'DELETE';
  id: string;
  tenant: string;
  /** A document inserted, or its embedding status changed. */
  embedding: boolean;
}

/** The error code of a subscription ended because its consumer fell behind. */
export const SLOW_CONSUMER = 'SLOW_CONSUMER';

const KINDS: ReadonlySet<string> = new Set(LIVE_KINDS);

function parseTopic(topic: string): { kind: LiveKind; id: string | null; tenant: string } {
  const first = topic.indexOf('|');
  const second = topic.indexOf('|', first + 1);
  const kind = topic.slice(0, first);
  if (first < 0 || second < 0 || !KINDS.has(kind)) throw new Error(`not a live topic: ${JSON.stringify(topic)}`);
  const id = topic.slice(first + 1, second);
  return { kind: kind as LiveKind, id: id === '' ? null : id, tenant: topic.slice(second + 1) };
}

function parseEvent(payload: string | undefined): LiveEvent | null {
  try {
    const event = JSON.parse(payload ?? '') as LiveEvent;
    return typeof event?.id === 'string' && typeof event.tenant === 'string' ? event : null;
  } catch {
    return null;
  }
}

const matches = (want: ReturnType<typeof parseTopic>, event: LiveEvent): boolean =>
  event.tenant === want.tenant &&
  (want.id === null || want.id === event.id) &&
  (want.kind === 'embedding' ? event.kind === 'document' && event.embedding : event.kind === want.kind);

export interface LiveEventsOptions {
  /** The connection string to LISTEN on (the gateway's authenticator: LISTEN needs no privilege). */
  url: string;
  /** Events one subscription may have waiting before it is ended as a slow consumer. */
  maxQueued: number;
  /** Told when the LISTEN connection fails (it is made again on the next subscription). */
  onError?: (err: Error) => void;
}

interface Listener {
  topic: ReturnType<typeof parseTopic>;
  push(event: LiveEvent): void;
}

export class LiveEvents implements GrafastSubscriber<Record<string, LiveEvent>> {
  private client: Promise<pg.Client> | null = null;
  /** channel → its subscriptions. */
  private readonly channels = new Map<string, Set<Listener>>();
  /** tenant → its channel's name (channelOf). */
  private readonly channelNames = new Map<string, Promise<string>>();
  /** Subscriptions still asking for their channel's name or listening on it. */
  private readonly starting = new Set<Promise<unknown>>();
  private released = false;
  /** LISTEN/UNLISTEN go one at a time (node-postgres queues them, but warns that it will stop). */
  private commands: Promise<unknown> = Promise.resolve();
  private readonly options: LiveEventsOptions;

  constructor(options: LiveEventsOptions) {
    this.options = options;
  }

  /** How many subscriptions are listening now (metrics, tests). */
  get size(): number {
    let n = 0;
    for (const set of this.channels.values()) n += set.size;
    return n;
  }

  private connection(): Promise<pg.Client> {
    this.client ??= (async () => {
      const client = new pg.Client({ connectionString: this.options.url, application_name: 'sheratan-live' });
      client.on('notification', (n) => this.dispatch(n.channel, n.payload));
      const lost = (err: Error): void => {
        // Made again (with every channel still wanted) by the next subscription or re-listen.
        this.client = null;
        this.options.onError?.(err);
        void client.end().catch(() => undefined);
        if (!this.released && this.channels.size > 0) setTimeout(() => void this.relisten(), 1000).unref();
      };
      client.on('error', lost);
      await client.connect();
      return client;
    })();
    this.client.catch(() => (this.client = null));
    return this.client;
  }

  /**
   * A tenant's channel, as sheratan_private.live_channel names it: a keyed
   * hash under a secret only the database knows (a name any login could
   * compute would let it LISTEN to another tenant), asked once per tenant.
   */
  private channelOf(tenant: string): Promise<string> {
    let name = this.channelNames.get(tenant);
    if (!name) {
      const asked = this.commands.then(async () => {
        const client = await this.connection();
        return (await client.query<{ channel: string }>('select sheratan_private.live_channel($1) as channel', [tenant])).rows[0]!.channel;
      });
      this.commands = asked.catch(() => undefined);
      name = asked;
      this.channelNames.set(tenant, name);
      name.catch(() => this.channelNames.delete(tenant));
    }
    return name;
  }

  private async relisten(): Promise<void> {
    if (this.released) return;
    try {
      for (const channel of this.channels.keys()) await this.command('listen', channel);
    } catch (err) {
      this.options.onError?.(err as Error);
    }
  }

  private dispatch(channel: string, payload: string | undefined): void {
    const listeners = this.channels.get(channel);
    const event = listeners && parseEvent(payload);
    if (!event) return;
    for (const listener of listeners) if (matches(listener.topic, event)) listener.push(event);
  }

  private async add(channel: string, listener: Listener): Promise<void> {
    let set = this.channels.get(channel);
    if (!set) {
      this.channels.set(channel, (set = new Set()));
      set.add(listener);
      await this.command('listen', channel);
    } else {
      set.add(listener);
    }
  }

  private remove(channel: string, listener: Listener): void {
    const set = this.channels.get(channel);
    if (!set?.delete(listener) || set.size > 0) return;
    this.channels.delete(channel);
    if (this.client) void this.command('unlisten', channel).catch(() => undefined);
  }

  private command(verb: 'listen' | 'unlisten', channel: string): Promise<unknown> {
    const run = this.commands.then(async () => {
      const client = await this.connection();
      await client.query(`${verb} ${client.escapeIdentifier(channel)}`);
    });
    this.commands = run.catch(() => undefined);
    return run;
  }

  subscribe(topic: string | number): AsyncIterableIterator<LiveEvent> {
    if (this.released) throw new Error('the gateway is shutting down');
    const want = parseTopic(String(topic));
    let channel: string | null = null;
    const { maxQueued } = this.options;
    const queue: LiveEvent[] = [];
    let wake: (() => void) | null = null;
    let failure: Error | null = null as Error | null;
    let done = false;
    const listener: Listener = {
      topic: want,
      push: (event) => {
        if (done) return;
        if (queue.length >= maxQueued) {
          failure = Object.assign(
            new Error(
              `this subscription fell more than ${maxQueued} events behind (LIVE_MAX_QUEUED_EVENTS) and was ended: read faster, or subscribe to fewer events`,
            ),
            {
              extensions: { code: SLOW_CONSUMER },
            },
          );
          queue.length = 0;
          if (channel) this.remove(channel, listener);
        } else {
          queue.push(event);
        }
        wake?.();
      },
    };
    // Listening starts now: an event committed after the first next() resolves its wait for `ready` is not missed.
    const ready = this.channelOf(want.tenant).then((name) => {
      channel = name;
      if (!done) return this.add(name, listener);
    });
    this.starting.add(ready);
    void ready.then(
      () => this.starting.delete(ready),
      () => this.starting.delete(ready),
    );
    const finish = async (): Promise<IteratorResult<LiveEvent>> => {
      done = true;
      queue.length = 0;
      if (channel) this.remove(channel, listener);
      wake?.();
      return { done: true, value: undefined };
    };
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next(): Promise<IteratorResult<LiveEvent>> {
        await ready;
        while (queue.length === 0 && !done && !failure) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        if (queue.length > 0) return { done: false, value: queue.shift()! };
        if (failure) {
          // Told once; the iterator is over after that.
          const told = failure;
          failure = null;
          done = true;
          throw told;
        }
        return { done: true, value: undefined };
      },
      return: finish,
      throw: finish,
    };
  }

  /** Waits until every channel wanted now is listened on (tests: an event committed after this is heard). */
  async ready(): Promise<void> {
    await Promise.allSettled([...this.starting]);
    await this.commands;
    await this.connection();
  }

  async release(): Promise<void> {
    this.released = true;
    this.channels.clear();
    const client = this.client;
    this.client = null;
    await client?.then((c) => c.end()).catch(() => undefined);
  }
}

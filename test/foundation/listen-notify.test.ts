// LISTEN/NOTIFY between connections behaves as on a server, on both backends:
// a notification reaches the connections listening on its channel and no
// other, at commit, and UNLISTEN or disconnecting stops it. (On the embedded
// engine every connection shares one backend; the listener once never heard
// a notification while the sender, who never listened, received its own.)
import pg from 'pg';
import { startDatabase, type TestDb } from '../support/database.ts';
import { waitFor } from '../support/processes.ts';

let h: TestDb;
beforeAll(async () => {
  h = await startDatabase();
});
afterAll(() => h.close());

interface Heard {
  channel: string;
  payload: string | undefined;
}

async function connection(): Promise<{ client: pg.Client; heard: Heard[] }> {
  const client = new pg.Client(h.ownerUrl);
  const heard: Heard[] = [];
  client.on('notification', (n) => heard.push({ channel: n.channel, payload: n.payload }));
  await client.connect();
  return { client, heard };
}

let barriers = 0;
/**
 * Returns once each of `conns` has heard a notification that `from` sends
 * now: PostgreSQL delivers a session's notifications in commit order, so
 * whatever `from` sent before that would reach them has reached them. (No
 * sleeping "long enough": what must not arrive is shown not to have arrived
 * before something that did.) The barrier's own notification is left out of
 * `heard`.
 */
async function barrier(from: pg.Client, ...conns: Array<{ client: pg.Client; heard: Heard[] }>): Promise<void> {
  const channel = `barrier_${++barriers}`;
  for (const c of conns) await c.client.query(`listen ${channel}`);
  await from.query(`notify ${channel}`);
  await waitFor(() => conns.every((c) => c.heard.some((x) => x.channel === channel)), 30_000, `every connection to hear ${channel}`);
  for (const c of conns) {
    await c.client.query(`unlisten ${channel}`);
    c.heard.splice(0, c.heard.length, ...c.heard.filter((x) => x.channel !== channel));
  }
}

test('a notification reaches the listening connections only, never the sender that did not listen', async () => {
  const [a, b, c] = await Promise.all([connection(), connection(), connection()]);
  await a.client.query('listen jobs');
  await c.client.query('listen other_channel');
  await b.client.query("notify jobs, 'job 1 queued'");
  await b.client.query("select pg_notify('jobs', 'job 2 queued')");
  await barrier(b.client, a, b, c);
  expect(a.heard).toEqual([
    { channel: 'jobs', payload: 'job 1 queued' },
    { channel: 'jobs', payload: 'job 2 queued' },
  ]);
  expect(b.heard).toEqual([]);
  expect(c.heard).toEqual([]);
  await Promise.all([a, b, c].map((x) => x.client.end()));
});

test('two listeners both hear it; after UNLISTEN only the other does; a listener hears its own notifications', async () => {
  const [a, b, sender] = await Promise.all([connection(), connection(), connection()]);
  await a.client.query('listen shared');
  await b.client.query('listen shared');
  await sender.client.query("notify shared, 'first'");
  await barrier(sender.client, a, b);
  await a.client.query('unlisten shared');
  await sender.client.query("notify shared, 'second'");
  await b.client.query("listen mine; notify mine, 'to myself'");
  await barrier(sender.client, a, b, sender);
  await barrier(b.client, b);
  expect(a.heard).toEqual([{ channel: 'shared', payload: 'first' }]);
  expect(b.heard).toEqual([
    { channel: 'shared', payload: 'first' },
    { channel: 'shared', payload: 'second' },
    { channel: 'mine', payload: 'to myself' },
  ]);
  expect(sender.heard).toEqual([]);
  await Promise.all([a, b, sender].map((x) => x.client.end()));
});

test('notifications are sent at commit, not at all on rollback; a disconnected listener is simply gone', async () => {
  const [listener, sender] = await Promise.all([connection(), connection()]);
  await listener.client.query('listen tx_channel');
  await sender.client.query('begin');
  await sender.client.query("notify tx_channel, 'rolled back'");
  await sender.client.query('rollback');
  await sender.client.query('begin');
  await sender.client.query("notify tx_channel, 'committed'");
  // Not before commit. The one absence no barrier can show: on the embedded
  // engine the open transaction holds the one backend, so no other
  // connection's query runs until it ends; a loopback round trip's worth of
  // waiting has to do here.
  await new Promise((r) => setTimeout(r, 300));
  expect(listener.heard).toEqual([]);
  await sender.client.query('commit');
  await barrier(sender.client, listener);
  expect(listener.heard).toEqual([{ channel: 'tx_channel', payload: 'committed' }]);
  await listener.client.end();
  await sender.client.query("notify tx_channel, 'nobody listens'");
  const fresh = await connection();
  await fresh.client.query("notify tx_channel, 'still nobody'");
  await barrier(sender.client, fresh, sender);
  await barrier(fresh.client, fresh, sender);
  expect(fresh.heard).toEqual([]);
  expect(sender.heard).toEqual([]);
  await Promise.all([sender.client.end(), fresh.client.end()]);
});

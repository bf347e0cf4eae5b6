// LISTEN/NOTIFY between connections behaves as on a server, on both backends:
// a notification reaches the connections listening on its channel and no
// other, at commit, and UNLISTEN or disconnecting stops it. (On the embedded
// engine every connection shares one backend; the listener once never heard
// a notification while the sender, who never listened, received its own.)
import pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

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

/** Long enough for a notification to arrive over loopback. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

test('a notification reaches the listening connections only, never the sender that did not listen', async () => {
  const [a, b, c] = await Promise.all([connection(), connection(), connection()]);
  await a.client.query('listen jobs');
  await c.client.query('listen other_channel');
  await b.client.query("notify jobs, 'job 1 queued'");
  await b.client.query("select pg_notify('jobs', 'job 2 queued')");
  await settle();
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
  await settle();
  await a.client.query('unlisten shared');
  await sender.client.query("notify shared, 'second'");
  await b.client.query("listen mine; notify mine, 'to myself'");
  await settle();
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
  await settle();
  expect(listener.heard).toEqual([]); // not before commit
  await sender.client.query('commit');
  await settle();
  expect(listener.heard).toEqual([{ channel: 'tx_channel', payload: 'committed' }]);
  await listener.client.end();
  await sender.client.query("notify tx_channel, 'nobody listens'");
  const fresh = await connection();
  await fresh.client.query("notify tx_channel, 'still nobody'");
  await settle();
  expect(fresh.heard).toEqual([]);
  expect(sender.heard).toEqual([]);
  await Promise.all([sender.client.end(), fresh.client.end()]);
});

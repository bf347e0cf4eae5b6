// The client scenarios of src/embedded/README.md against @electric-sql/pglite-socket.
// Not a dependency of the store: run it in a scratch directory,
//   npm i @electric-sql/pglite-socket@0.2.17 @electric-sql/pglite@0.5.14 pg && node probe.mjs
// It prints what each scenario gave.
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg from 'pg';
const db = await PGlite.create();
await db.exec('create table t (n int)');
const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 10 });
await server.start();
const port = server.server?.address?.().port ?? server.port;
const url = (pw = 'anything') => `postgres://postgres:${pw}@127.0.0.1:${port}/postgres`;
const within = (p, ms) =>
  Promise.race([Promise.resolve(p).catch((e) => 'ERROR: ' + e.message), new Promise((r) => setTimeout(() => r('TIMEOUT after ' + ms + ' ms'), ms))]);
const result = {};
const a = new pg.Client(url());
a.on('error', () => {});
await a.connect();
const b = new pg.Client(url('wrong-password'));
b.on('error', () => {});
result.anyPassword = await within(
  b.connect().then(
    () => 'accepted',
    (e) => 'refused: ' + e.message,
  ),
  3000,
);
result.settingLeak = await within(
  (async () => {
    await a.query("set statement_timeout = '4321ms'");
    return (await b.query('show statement_timeout')).rows[0].statement_timeout;
  })(),
  3000,
);
result.preparedNames = await within(
  (async () => {
    await a.query({ name: 'same', text: "select 'a' as who" });
    return (await b.query({ name: 'same', text: "select 'b' as who" })).rows[0].who;
  })(),
  3000,
);
result.uncommittedVisible = await within(
  (async () => {
    await a.query('begin');
    await a.query('insert into t values (1)');
    const r = (await b.query('select count(*)::int as n from t')).rows[0].n;
    return r;
  })(),
  3000,
);
await within(a.query('rollback'), 3000);
const c = new pg.Client(url());
c.on('error', () => {});
await c.connect();
result.listenNotify = await within(
  (async () => {
    const heard = [];
    a.on('notification', () => heard.push('a'));
    c.on('notification', () => heard.push('c'));
    await a.query('listen x');
    await c.query("notify x, 'hi'");
    await new Promise((r) => setTimeout(r, 300));
    return heard.join(',') || 'nobody';
  })(),
  3000,
);
console.log(JSON.stringify(result));
result.copyFromStdin = await within(
  c.query('copy t from stdin').then(
    () => 'ok',
    (e) => e.message,
  ),
  3000,
);
console.log(JSON.stringify(result, null, 1));
const d = new pg.Client(url());
d.on('error', () => {});
console.log(
  'after COPY, a new client:',
  await within(
    d
      .connect()
      .then(() => d.query('select 1 as ok'))
      .then((r) => JSON.stringify(r.rows)),
    5000,
  ),
);
process.exit(0);

// Attack: the live events' NOTIFY channels (issue 27, item 1), through a SQL
// login. Found by the attacker of issue 25 (both backends): a login made by
// `npm run db:reporting-login` for tenant acme ran `LISTEN
// sheratan_live_<md5('other')>` (the channel name is computable from a tenant
// name: sheratan_private.live_channel, src/graphql/live-events.ts
// liveChannel) and received every change of tenant other as it committed:
// `{"kind":"document","op":"INSERT","id":"da3038c4-…","tenant":"other",
// "embedding":true}`; its `NOTIFY` on that channel with a made-up payload
// (op DELETE, any id) was accepted too, so it can also send events to the
// other tenant's subscribers. Postgres has no privilege on LISTEN or NOTIFY:
// any login may use any channel it can name.
//
// The invariant: whatever channel names a login of one tenant can derive from
// another tenant's name, listening on them tells it nothing of that tenant.
// Fixed: a channel is a keyed hash of the tenant under a secret only the owner
// reads (sheratan_private.live_secret), and only the gateway's login may ask
// for a tenant's channel (sheratan_private.live_channel).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { projectRoot } from '../../src/config/paths.ts';
import { SUPERUSER_URL } from '../support/backend.ts';
import { applyCurrentMigration } from '../support/current-migration.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { waitFor } from '../support/processes.ts';

let h: Harness;
const LOGIN = `live_listen_${process.pid}`;
const PASSWORD = 'live-listen-password-0123';

beforeAll(async () => {
  h = await startHarness({ NODE_ENV: 'production' });
  await applyCurrentMigration(h);
  const made = spawnSync(
    process.execPath,
    [path.join(projectRoot, 'src/cli.ts'), 'db:reporting-login', '--name', LOGIN, '--tenant', 'acme', '--password', PASSWORD],
    {
      env: { ...process.env, ...h.cliEnv, ...(SUPERUSER_URL ? { ROOT_DATABASE_URL: SUPERUSER_URL } : {}) },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(made.stderr).toBe('');
}, 180_000);

afterAll(async () => {
  if (SUPERUSER_URL && h) {
    const owner = await h.owner();
    await owner.query('delete from sheratan_private.tenant_logins where login_role = $1', [LOGIN]);
    await owner.end();
    spawnSync('psql', [SUPERUSER_URL, '-qc', `drop owned by ${LOGIN}; drop role if exists ${LOGIN}`], { encoding: 'utf8' });
  }
  await h?.stop();
});

/** Every channel name a login could derive from a tenant's name. */
const derivable = (tenant: string): string[] => [
  `sheratan_live_${createHash('md5').update(tenant).digest('hex')}`,
  `sheratan_live_${tenant}`,
  `sheratan_live`,
  tenant,
];

test('a SQL login of one tenant hears nothing of another tenant on any channel it can name, and cannot ask for one', async () => {
  const url = new URL(h.ownerUrl);
  url.username = LOGIN;
  url.password = PASSWORD;
  const login = new pg.Client(url.toString());
  login.on('error', () => undefined);
  await login.connect();
  const heard: string[] = [];
  login.on('notification', (n) => heard.push(`${n.channel}: ${n.payload}`));
  for (const tenant of ['other', 'globex']) for (const channel of derivable(tenant)) await login.query(`listen "${channel}"`);
  // Neither the name nor its key is the login's to read.
  for (const sql of ["select sheratan_private.live_channel('other')", 'select secret from sheratan_private.live_secret']) {
    const denied = await login.query(sql).then(
      () => 'allowed',
      (err: { code?: string }) => err.code,
    );
    expect({ sql, denied }).toEqual({ sql, denied: '42501' });
  }
  for (const tenant of ['other', 'globex']) {
    const res = await h.graphql('mutation { createDocument(input: { document: { title: "heard?" } }) { document { id } } }', {
      token: h.token('sheratan_app', tenant),
    });
    expect(res.body.errors).toBeUndefined();
  }
  // A barrier: a notification the login may hear, sent after those writes
  // committed. Once it arrives, anything of theirs that could reach the
  // login has (a session's notifications arrive in commit order).
  await login.query('listen attack_barrier');
  const owner = await h.owner();
  await owner.query('notify attack_barrier');
  await waitFor(() => heard.includes('attack_barrier: '), 30_000, 'the barrier notification');
  await login.end();
  expect(heard).toEqual(['attack_barrier: ']);
});

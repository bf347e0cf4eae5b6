// The embedded database's connection string is the same across restarts (the
// port is remembered in the data directory, or chosen with EMBEDDED_PORT), and
// `db:url` says when nothing serves it. (It once changed on every start, so a
// URL saved in a tool stopped working.)
import net from 'node:net';
import { rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { freePort, runCli, startGatewayProcess } from '../support/processes.ts';
import { describeEmbedded, tempDataDir } from '../support/backend.ts';

const SECRET = 'embedded-url-test-secret-0123456789abcdef';

describeEmbedded('it tests the embedded engine’s own port', 'the embedded connection string', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDataDir();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const dbUrl = async (env: Record<string, string> = {}): Promise<{ url: string; note: string; code: number | null }> => {
    const cli = runCli(['db:url'], { SHERATAN_DATA_DIR: dir, LOG_LEVEL: 'silent', ...env });
    const exit = await cli.exited;
    const [url = '', ...rest] = cli.output().trim().split('\n');
    return { url, note: rest.join('\n'), code: exit.code };
  };
  const selectOne = (url: string): string => spawnSync('psql', [url, '-XAtqc', 'select 1'], { encoding: 'utf8', timeout: 30_000 }).stdout.trim();

  test('db:url before any start names the URL and says nothing serves it; npm start then serves exactly that URL, after a restart too', async () => {
    const before = await dbUrl();
    expect(before.code).toBe(0);
    expect(before.url).toMatch(/^postgres:\/\/sheratan:[0-9a-f]{64}@127\.0\.0\.1:\d+\/sheratan$/);
    expect(before.note).toMatch(/nothing is serving the embedded database in .* right now: this URL works while `npm start`/);
    for (let round = 0; round < 2; round++) {
      const gw = await startGatewayProcess({ SHERATAN_DATA_DIR: dir, JWT_SECRET: SECRET });
      try {
        const served = await dbUrl();
        expect(served).toEqual({ url: before.url, note: '', code: 0 });
        expect(selectOne(before.url)).toBe('1');
      } finally {
        gw.child.kill('SIGTERM');
        expect((await gw.exited).code).toBe(0);
      }
    }
  }, 120_000);

  test('EMBEDDED_PORT chooses the port; a port in use is refused with a message naming it', async () => {
    const port = await freePort();
    const chosen = await dbUrl({ EMBEDDED_PORT: String(port) });
    expect(chosen.url).toContain(`@127.0.0.1:${port}/sheratan`);
    const gw = await startGatewayProcess({ SHERATAN_DATA_DIR: dir, JWT_SECRET: SECRET, EMBEDDED_PORT: String(port) });
    try {
      expect(selectOne(chosen.url)).toBe('1');
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(port, '127.0.0.1', resolve));
    try {
      const cli = runCli(['doctor'], { SHERATAN_DATA_DIR: dir, LOG_LEVEL: 'silent', EMBEDDED_PORT: String(port), JWT_SECRET: SECRET });
      const exit = await cli.exited;
      expect(exit.code).not.toBe(0);
      expect(cli.output()).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use (EADDRINUSE); free it, or set EMBEDDED_PORT to another port`);
    } finally {
      busy.close();
    }
  }, 120_000);
});

describeEmbedded('it tests commands attaching to an engine another process serves', 'commands while the serving gateway exits', () => {
  test('doctor run while the gateway is still exiting after SIGTERM waits for it and succeeds, every time', async () => {
    const dir = tempDataDir();
    try {
      expect((await runCli(['db:migrate'], { SHERATAN_DATA_DIR: dir, LOG_LEVEL: 'silent' }).exited).code).toBe(0);
      for (let round = 0; round < 3; round++) {
        const gw = await startGatewayProcess({ SHERATAN_DATA_DIR: dir, JWT_SECRET: SECRET, SHUTDOWN_GRACE_MS: '0' });
        gw.child.kill('SIGTERM');
        // Straight after the signal, and a little later, while the engine closes.
        const doctors = [];
        for (const delay of [0, 150, 300]) {
          await new Promise((r) => setTimeout(r, delay ? 150 : 0));
          const d = runCli(['doctor'], { SHERATAN_DATA_DIR: dir, LOG_LEVEL: 'silent', JWT_SECRET: SECRET });
          doctors.push(d.exited.then((e) => ({ code: e.code, output: e.code === 0 ? '' : d.output() })));
          await d.exited; // one command at a time on the data directory
        }
        expect((await gw.exited).code).toBe(0);
        expect(await Promise.all(doctors)).toEqual([
          { code: 0, output: '' },
          { code: 0, output: '' },
          { code: 0, output: '' },
        ]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

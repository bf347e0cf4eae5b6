// The gateway and the CLI as separate processes, for tests of what happens to
// a whole process: signals, crashes, restarts, commands racing each other.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';

export const CLI = path.join(projectRoot, 'src', 'cli.ts');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor(predicate: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (
      await Promise.resolve()
        .then(predicate)
        .catch(() => false)
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** When the process ended (Date.now()). */
  at: number;
}

export interface CliProcess {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  exited: Promise<Exit>;
}

/** Runs `sheratan <args>` with the given environment (on top of the test's own). */
export function runCli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  return { child, output: () => out, exited };
}

/** The CLI run to its end (LOG_LEVEL warn unless `env` says): its exit code and all it printed. */
export async function runCliToEnd(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const proc = runCli(args, { LOG_LEVEL: 'warn', ...env });
  const exit = await proc.exited;
  return { code: exit.code, output: proc.output() };
}

/** `url` logging in as `user` with `password` (both URL-encoded). */
export function asLogin(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

export interface GatewayProcess extends CliProcess {
  url: string;
  port: number;
}

/** `npm start` as its own process, on a free port; resolves once /readyz answers 200. */
export async function startGatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort();
  // One process unless the test asks for workers: the limits tests read are per process (production's default is one per core).
  const proc = runCli(['start'], { LOG_LEVEL: 'info', HOST: '127.0.0.1', WORKERS: '1', ...env, PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  let exit: Exit | null = null;
  void proc.exited.then((e) => (exit = e));
  await waitFor(
    async () => {
      if (exit) throw new Error(`the gateway exited (${exit.code ?? exit.signal}) before it was ready:\n${proc.output()}`);
      return (await fetch(`${url}/readyz`)).status === 200;
    },
    90_000,
    `gateway on ${url} ready`,
  ).catch((err: Error) => {
    proc.child.kill('SIGKILL');
    throw new Error(`${err.message}\n${proc.output()}`);
  });
  return { ...proc, url, port };
}

export interface Reply {
  status: number;
  body: { data?: Record<string, unknown> | null; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
}

/**
 * One GraphQL request, by default on its own connection (no keep-alive), so
 * "in flight" means exactly: connected before something happened. Rejects
 * with the socket error (e.g. ECONNREFUSED) when there is no HTTP answer.
 */
export async function postOnce(
  url: string,
  token: string,
  query: string,
  variables?: Record<string, unknown>,
  agent: http.Agent | false = false,
): Promise<Reply> {
  const { status, text } = await postText(`${url}/graphql`, token, JSON.stringify({ query, variables }), agent);
  try {
    return { status, body: JSON.parse(text) as Reply['body'] };
  } catch {
    return { status, body: { errors: [{ message: `not JSON: ${text.slice(0, 200)}` }] } };
  }
}

/** POSTs `body` (JSON text) with a bearer token; resolves with the status and the reply's text, rejects on a socket error. */
export function postText(url: string, token: string, body: string, agent: http.Agent | false = false): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export interface EngineProcess extends CliProcess {
  ownerUrl: string;
  authUrl: string;
  /** SIGTERM, then the clean stop; resolves with its exit. */
  stop(): Promise<Exit>;
}

/** The embedded engine for `dataDir` served on `port` by a process of its own. */
export async function startEngineProcess(dataDir: string, port: number): Promise<EngineProcess> {
  const child = spawn(process.execPath, [path.join(projectRoot, 'test', 'support', 'engine-process.ts'), dataDir, String(port)], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  const urls = await new Promise<{ ownerUrl: string; authUrl: string }>((resolve, reject) => {
    let line = '';
    child.stdout!.on('data', (d: Buffer) => {
      line += d.toString();
      if (line.includes('\n')) resolve(JSON.parse(line.split('\n')[0]!) as { ownerUrl: string; authUrl: string });
    });
    void exited.then((e) => reject(new Error(`the engine process exited (${e.code ?? e.signal}) before it was ready:\n${out}`)));
  });
  return {
    child,
    exited,
    output: () => out,
    ...urls,
    stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

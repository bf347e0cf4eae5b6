// A real OpenAI-compatible embeddings server for tests, in its own process:
// POST /v1/embeddings with OpenAI's request and response shapes (`input` a
// string or a list, `dimensions`, `usage`), answering with the LOCAL model's
// real vectors so rankings through the `openai` provider stay meaningful.
// Faults are switched per test (setFault): a delay, 429 with Retry-After or
// 500 for the next N calls, a wrong dimension, NaN, a wrong count, a
// malformed body, a hang. Every call is logged (calls()) with its
// Authorization header, path and raw body, so a test can check retries and
// that the key arrived only in the header.
//
// Used as a module: startOpenAiServer(). Run as a program
// (`node test/support/openai-server.ts [--key K]`), it serves and prints
// {"port": N} on stdout once the model is loaded.
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface Fault {
  /** Calls answered normally before the fault applies (default 0). */
  after?: number;
  /** Every answer waits this long first. */
  delayMs?: number;
  /** The next `count` calls answer 429 with this Retry-After (seconds, or an HTTP date; omitted when undefined). */
  rateLimit?: { count: number; retryAfter?: string };
  /** The next `count` calls answer this 5xx (default 500). */
  serverError?: { count: number; status?: number };
  /** Vectors one number short. */
  wrongDimension?: boolean;
  /** NaN (written as a bare NaN token, as a broken server would) or Infinity (1e999) in the first vector. */
  nan?: boolean;
  infinity?: boolean;
  /** One vector fewer than inputs. */
  wrongCount?: boolean;
  /** A 200 whose body is not JSON. */
  malformed?: boolean;
  /** Headers and body never come. */
  hang?: boolean;
}

export interface Call {
  at: number;
  method: string;
  path: string;
  authorization: string | null;
  /** The raw request body. */
  body: string;
  inputs: number;
  model: string | null;
  dimensions: number | null;
  status: number;
}

export interface OpenAiServer {
  /** The API base as the SDKs take it: http://127.0.0.1:PORT/v1 */
  url: string;
  setFault(fault: Fault): Promise<void>;
  calls(): Promise<Call[]>;
  stop(): Promise<void>;
}

/** Starts the server in a child process; `key`, when given, is the only one it accepts (a wrong one gets 401 echoing it, as some servers do). */
export async function startOpenAiServer(options: { key?: string } = {}): Promise<OpenAiServer> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...(options.key ? ['--key', options.key] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { port: number }).port);
    });
    void exited.then(() => reject(new Error(`the OpenAI test server exited before it listened:\n${stderr}`)));
  });
  const control = `http://127.0.0.1:${port}/_control`;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    async setFault(fault) {
      const res = await fetch(`${control}/fault`, { method: 'POST', body: JSON.stringify(fault) });
      if (!res.ok) throw new Error(`setFault: HTTP ${res.status}`);
    },
    async calls() {
      return (await (await fetch(`${control}/calls`)).json()) as Call[];
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

// ---- the server process ----

async function serve(key: string | undefined): Promise<void> {
  const { loadLocalModel } = await import('../../src/embedding/local-model.ts');
  const model = await loadLocalModel();
  let fault: Fault = {};
  let seen = 0; // calls since the fault was set
  const calls: Call[] = [];

  const send = (res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  };
  const error = (message: string, type = 'invalid_request_error'): string => JSON.stringify({ error: { message, type, param: null, code: null } });

  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (raw += d));
    req.on('end', () => {
      void (async () => {
        const path = (req.url ?? '/').split('?')[0]!;
        if (path === '/_control/fault') {
          fault = JSON.parse(raw || '{}') as Fault;
          seen = 0;
          calls.length = 0;
          return send(res, 200, '{}');
        }
        if (path === '/_control/calls') return send(res, 200, JSON.stringify(calls));
        let parsed: { input?: unknown; model?: unknown; dimensions?: unknown } = {};
        try {
          parsed = JSON.parse(raw) as typeof parsed;
        } catch {
          // answered below as a 400
        }
        const call: Call = {
          at: Date.now(),
          method: req.method ?? '',
          path: req.url ?? '',
          authorization: req.headers.authorization ?? null,
          body: raw,
          inputs: Array.isArray(parsed.input) ? parsed.input.length : typeof parsed.input === 'string' ? 1 : 0,
          model: typeof parsed.model === 'string' ? parsed.model : null,
          dimensions: typeof parsed.dimensions === 'number' ? parsed.dimensions : null,
          status: 0,
        };
        calls.push(call);
        const answer = (status: number, body: string, headers?: Record<string, string>): void => {
          call.status = status;
          send(res, status, body, headers);
        };
        if (req.method !== 'POST' || path !== '/v1/embeddings') return answer(404, error(`no route ${req.method} ${path}`));
        if (key !== undefined && req.headers.authorization !== `Bearer ${key}`) {
          const given = (req.headers.authorization ?? '').replace(/^Bearer /, '');
          return answer(401, error(`Incorrect API key provided: ${given}.`, 'invalid_api_key'));
        }
        const n = ++seen;
        const active = n > (fault.after ?? 0);
        if (active && fault.hang) {
          call.status = -1;
          return; // never answers; the client's timeout ends it
        }
        if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
        if (active && fault.rateLimit && fault.rateLimit.count > 0) {
          fault.rateLimit.count--;
          return answer(
            429,
            error('Rate limit reached for requests', 'requests'),
            fault.rateLimit.retryAfter === undefined ? {} : { 'retry-after': fault.rateLimit.retryAfter },
          );
        }
        if (active && fault.serverError && fault.serverError.count > 0) {
          fault.serverError.count--;
          return answer(fault.serverError.status ?? 500, error('The server had an error while processing your request.', 'server_error'));
        }
        const inputs = typeof parsed.input === 'string' ? [parsed.input] : parsed.input;
        if (!Array.isArray(inputs) || inputs.length === 0 || inputs.some((t) => typeof t !== 'string' || t === '')) {
          return answer(400, error("'input' must be a non-empty string or a list of non-empty strings"));
        }
        const dimensions = parsed.dimensions === undefined ? 512 : parsed.dimensions;
        if (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < 1 || dimensions > 512) {
          return answer(400, error(`This model supports dimensions from 1 to 512, not ${String(parsed.dimensions)}`));
        }
        if (active && fault.malformed) return answer(200, '{"object":"list","data":[{"embedding":[0.1,0.2');
        let vectors = (await model.embed(inputs as string[])).map((v) => {
          // Shortened like text-embedding-3's `dimensions`: the first numbers, normalised again.
          const cut = v.slice(0, dimensions);
          const norm = Math.hypot(...cut) || 1;
          return cut.map((x) => x / norm);
        });
        if (active && fault.wrongDimension) vectors = vectors.map((v) => v.slice(0, -1));
        if (active && fault.wrongCount) vectors = vectors.slice(0, -1);
        let body = JSON.stringify({
          object: 'list',
          data: vectors.map((embedding, index) => ({ object: 'embedding', index, embedding })),
          model: call.model,
          usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
        });
        if (active && fault.nan) body = body.replace(/"embedding":\[[^,\]]+/, '"embedding":[NaN');
        if (active && fault.infinity) body = body.replace(/"embedding":\[[^,\]]+/, '"embedding":[1e999');
        answer(200, body);
      })().catch((err: unknown) => {
        if (!res.headersSent) send(res, 500, error(String(err), 'server_error'));
      });
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--key');
  void serve(at > 0 ? process.argv[at + 1] : undefined);
}

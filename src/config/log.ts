// One-line JSON logs on stderr, so stdout stays clean for command output.
// Lines written while serving a request carry its request id (the same as
// the X-Request-Id response header), so a client's report finds the log;
// with WORKERS=N, lines of a worker carry its number.
import { AsyncLocalStorage } from 'node:async_hooks';
import cluster from 'node:cluster';
import { format } from 'node:util';
import type { Config } from './config.ts';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
type Level = Exclude<keyof typeof LEVELS, 'silent'>;
let threshold: number = LEVELS.info;
const requestScope = new AsyncLocalStorage<string>();

export function setLogLevel(level: Config['logLevel']): void {
  threshold = LEVELS[level];
}

/** Runs `fn` (and everything it starts) as part of the request `requestId`. */
export function inRequest<T>(requestId: string, fn: () => T): T {
  return requestScope.run(requestId, fn);
}

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (LEVELS[level] < threshold) return;
  const requestId = requestScope.getStore();
  const worker = cluster.worker?.id;
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...(worker !== undefined ? { worker } : {}), ...(requestId ? { requestId } : {}), ...fields })}\n`,
  );
}

let consoleRouted = false;
/**
 * The libraries under the gateway (grafast, @dataplan/pg, grafserv) report
 * some problems with console.error/console.warn: multi-line text and stacks
 * on stderr, between the JSON lines. Once the gateway runs, those become log
 * lines too (level error/warn, the text in `msg`, stacks in `error`), under
 * the same LOG_LEVEL and with the request id.
 */
export function routeConsoleToLog(): void {
  if (consoleRouted) return;
  consoleRouted = true;
  const asLog =
    (level: 'warn' | 'error') =>
    (...args: unknown[]): void => {
      const errors = args.filter((a): a is Error => a instanceof Error);
      const text = format(...args.map((a) => (a instanceof Error ? a.message : a))).trim();
      log(level, text || (errors[0]?.message ?? ''), errors.length ? { error: errors.map((e) => e.stack ?? String(e)).join('\n') } : {});
    };
  console.error = asLog('error');
  console.warn = asLog('warn');
}

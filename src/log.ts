// One-line JSON logs on stderr, so stdout stays clean for command output.
// Lines written while serving a request carry its request id (the same as
// the X-Request-Id response header), so a client's report finds the log.
import { AsyncLocalStorage } from 'node:async_hooks';
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
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...(requestId ? { requestId } : {}), ...fields })}\n`);
}

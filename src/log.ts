// One-line JSON logs on stderr, so stdout stays clean for command output.
import type { Config } from './config.ts';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
type Level = Exclude<keyof typeof LEVELS, 'silent'>;
let threshold: number = LEVELS.info;

export function setLogLevel(level: Config['logLevel']): void {
  threshold = LEVELS[level];
}

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (LEVELS[level] < threshold) return;
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

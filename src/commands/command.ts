// What every command module exports, and what they share: the database
// opened for one command, and waiting for a stop signal. A command parses its
// arguments and prints; the work is in src/operations/ (or the box it
// belongs to).
import type { Config } from '../config/config.ts';
import { openDatabase, type Database } from '../database/connect.ts';

export interface Command {
  /** The name as typed: `npm run <name>` (`sheratan <name>`). */
  name: string;
  /** One line for the list of commands. */
  summary: string;
  /** What `--help` prints: the arguments and what each does. */
  usage: string;
  /** Runs the command; resolves with the exit code (0 when nothing is returned). */
  run(config: Config, args: string[]): Promise<number | void>;
}

/** Runs `fn` with the database open (attaching to a running embedded engine if there is one), closing it after. */
export async function usingDatabase<T>(config: Config, purpose: string, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(config, { purpose });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Resolves after SIGTERM or SIGINT, once `stop` (given the signal's name) has finished. */
export function untilSignal(stop: (signal: string) => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const on = (signal: string): void => {
      stop(signal).then(resolve, resolve);
    };
    process.once('SIGTERM', () => on('SIGTERM'));
    process.once('SIGINT', () => on('SIGINT'));
  });
}

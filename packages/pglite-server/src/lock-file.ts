// Lock files in an embedded data directory: the engine's (`engine.lock`, who
// serves it) and the migrations' (`migrate.lock`, who migrates it). A lock is
// a file created exclusively, holding JSON with at least the holder's pid; a
// lock whose process is gone is stale and may be taken over.
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

export interface LockHolder {
  pid: number;
}

/**
 * Whether a process with this pid is alive (EPERM: it is, and is not ours).
 * A zombie is not: killed, it holds nothing, but its pid answers signals
 * until its parent reaps it, which after kill -9 of a process group (its
 * parent killed too) waits for init, and a container's init may never do it.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state …"; comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): the signal's answer stands
  }
}

export function readLockFile<T extends LockHolder>(file: string): T | null {
  try {
    const holder = JSON.parse(readFileSync(file, 'utf8')) as T;
    return typeof holder?.pid === 'number' ? holder : null;
  } catch {
    return null;
  }
}

/**
 * Takes the lock for `info` (which names this process), or returns its live
 * holder. A stale lock, or one that cannot be read after a retry, is removed.
 */
export function tryLockFile<T extends LockHolder>(file: string, info: T): T | null {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeFileSync(fd, JSON.stringify(info));
      closeSync(fd);
      return null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readLockFile<T>(file);
      if (holder && processAlive(holder.pid)) return holder;
      if (holder || attempt > 0) rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`could not take the lock ${file}`);
}

/** Rewrites the held lock's contents (e.g. the port once serving). */
export function updateLockFile<T extends LockHolder>(file: string, info: T): void {
  writeFileSync(file, JSON.stringify(info));
}

export function releaseLockFile(file: string): void {
  rmSync(file, { force: true });
}

// A data directory's lock names its holder's pid; a killed holder must free
// it even before its parent reaps it. After kill -9 of `npm start`'s process
// group the gateway stays a zombie until init reaps it (a container's init may
// never do it), and a zombie's pid still answers kill(pid, 0): the restart was
// refused "in use by process N (gateway)" for a process already dead.
import { spawn } from 'node:child_process';
import { processAlive } from '@sheratan/pglite-server';
import { waitFor } from './support/wait-for.ts';

test('a running process is alive; killed and not yet reaped (a zombie) it is not, though its pid still takes signals', async () => {
  // A child that is never waited for: once killed it stays a zombie while
  // this process (its parent) does not reap it.
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  const pid = child.pid!;
  child.removeAllListeners();
  expect(processAlive(pid)).toBe(true);
  process.kill(pid, 'SIGKILL');
  // libuv reaps children on SIGCHLD; until it has, the pid is a zombie. Either way it must read as gone.
  await waitFor(() => !processAlive(pid), 10_000, 'the killed process to read as gone');
  expect(processAlive(pid)).toBe(false);
  expect(processAlive(process.pid)).toBe(true);
});

test('a zombie reads as gone: /proc says Z while kill(pid, 0) still succeeds', async () => {
  // perl (Debian's perl-base is essential) forks a child that exits at once and never waits for it, so
  // the child stays a zombie until perl ends. A shell's background child did not
  // stay a zombie in one CI run (2026-12-03; cause not found): perl's never-waited fork leaves no room for that.
  const parent = spawn('perl', ['-e', '$| = 1; my $p = fork; exit 0 unless $p; print "$p\\n"; sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const zombie = await new Promise<number>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  try {
    const { readFileSync } = await import('node:fs');
    await waitFor(() => / Z /.test(readFileSync(`/proc/${zombie}/stat`, 'utf8').replace(/^.*\)/, ')')), 10_000, 'the child to become a zombie');
    expect(() => process.kill(zombie, 0)).not.toThrow();
    expect(processAlive(zombie)).toBe(false);
  } finally {
    parent.kill('SIGKILL');
  }
});

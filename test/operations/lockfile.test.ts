// `npm install` leaves package-lock.json as committed (issue 32: a fresh
// clone's install rewrote six `devOptional` flags to `dev`, and `git status`
// was not clean). npm resolves the tree again from package.json and the lock,
// in a copy of the two (and .npmrc), without installing or running scripts,
// from its cache where it can; the lock it would write is the committed one.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';

test('npm install, resolving package.json against package-lock.json, leaves the lock byte for byte as it is', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sheratan-lock-'));
  try {
    for (const file of ['package.json', 'package-lock.json', '.npmrc']) copyFileSync(path.join(projectRoot, file), path.join(dir, file));
    const npm = spawnSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(`exit ${npm.status}\n${npm.stderr}`).toMatch(/^exit 0\n/);
    expect(readFileSync(path.join(dir, 'package-lock.json'), 'utf8')).toBe(readFileSync(path.join(projectRoot, 'package-lock.json'), 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 300_000);

// ARCHITECTURE.md's import rules, checked: each box imports only the boxes
// below it, so the layout keeps showing the architecture.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';

// Each box and what it may import (besides itself and npm packages).
const ALLOWED: Record<string, readonly string[]> = {
  'src/commands': ['src/admin', 'src/operations', 'src/http', 'src/graphql', 'src/database', 'src/embedding', 'src/config', 'plugins'],
  'src/cli.ts': ['src/commands'],
  // The operator page: a box above http (it mounts itself on the gateway the commands start) and operations (doctor).
  'src/admin': ['src/operations', 'src/http', 'src/database', 'src/embedding', 'src/config'],
  'src/operations': ['src/database', 'src/embedding', 'src/config'],
  'src/http': ['src/graphql', 'src/database', 'src/embedding', 'src/config', 'plugins'],
  'src/graphql': ['src/database', 'src/config', 'plugins'],
  'src/database': ['src/config'],
  'src/embedding': ['src/config'],
  // The ground floor: configuration imports nothing of the project.
  'src/config': [],
  'src/client': [],
  plugins: ['src/config'],
};

/**
 * The workspace packages (packages/*), the one box of the app that may depend on each, and the npm packages
 * its own tests (dir/test) use besides its dependencies (the repository's devDependencies).
 */
const PACKAGES: Record<string, { dir: string; importer: string; testLibraries: readonly string[] }> = {
  '@sheratan/pglite-server': { dir: 'packages/pglite-server', importer: 'src/database', testLibraries: ['pg', 'pg-copy-streams'] },
  '@sheratan/wait-queue': { dir: 'packages/wait-queue', importer: 'src/http', testLibraries: [] },
};

function files(dir: string): string[] {
  return readdirSync(path.join(projectRoot, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

const boxOf = (file: string): string | undefined =>
  Object.keys(ALLOWED)
    .filter((box) => file === box || file.startsWith(`${box}/`))
    .sort((a, b) => b.length - a.length)[0];

test('every import in src/ and plugins/ goes to its own box or one below it', () => {
  const wrong: string[] = [];
  const all = [...files('src'), ...files('plugins')];
  expect(all.length).toBeGreaterThan(60);
  for (const file of all) {
    const box = boxOf(file);
    if (!box) {
      if (!file.endsWith('.d.ts')) wrong.push(`${file} is in no box`);
      continue;
    }
    const text = readFileSync(path.join(projectRoot, file), 'utf8');
    for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = path.relative(projectRoot, path.resolve(projectRoot, path.dirname(file), spec!));
      if (boxOf(target) === box) continue;
      if (!ALLOWED[box]!.some((allowed) => target === allowed || target.startsWith(`${allowed}/`))) wrong.push(`${file} imports ${target}`);
    }
  }
  expect(wrong).toEqual([]);
});

test('each workspace package has one importer in the app, and imports nothing of the app or of its own files by a path outside it', () => {
  const wrong: string[] = [];
  const app = [...files('src'), ...files('plugins')];
  for (const [name, { dir, importer }] of Object.entries(PACKAGES)) {
    const manifest = JSON.parse(readFileSync(path.join(projectRoot, dir, 'package.json'), 'utf8')) as { name: string };
    expect(manifest.name).toBe(name);
    // Its app importer reaches it by its name (a package dependency of the app), never by a path into it.
    for (const file of app) {
      const text = readFileSync(path.join(projectRoot, file), 'utf8');
      const byName = new RegExp(`(?:from|import)\\s*\\(?\\s*'${name}(?:/[^']*)?'`).test(text);
      if (byName && !(file === importer || file.startsWith(`${importer}/`))) wrong.push(`${file} imports ${name}`);
      if (text.includes(`${dir}/`) && /(?:from|import)\s*\(?\s*'[^']*packages\//.test(text)) wrong.push(`${file} imports ${dir} by path`);
    }
    // The package itself: relative imports stay inside it; it names no module of the app.
    for (const file of files(dir)) {
      const text = readFileSync(path.join(projectRoot, file), 'utf8');
      for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = path.relative(projectRoot, path.resolve(projectRoot, path.dirname(file), spec!));
        if (!target.startsWith(`${dir}/`)) wrong.push(`${file} imports ${target}`);
      }
      if (/(?:from|import)\s*\(?\s*'sheratan-store/.test(text)) wrong.push(`${file} imports the app`);
    }
  }
  expect(wrong).toEqual([]);
});

test("each workspace package's own tests import only the package, their own support, Node's builtins and the libraries named for them: nothing of the app's src/ or test/", () => {
  const wrong: string[] = [];
  for (const [name, { dir, testLibraries }] of Object.entries(PACKAGES)) {
    const manifest = JSON.parse(readFileSync(path.join(projectRoot, dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    const libraries = new Set([...Object.keys(manifest.dependencies ?? {}), ...testLibraries]);
    const tests = files(path.join(dir, 'test'));
    expect(tests.filter((f) => f.endsWith('.test.ts')).length).toBeGreaterThan(0);
    for (const file of tests) {
      const text = readFileSync(path.join(projectRoot, file), 'utf8');
      // Every module named (static, dynamic and side-effect imports, re-exports), not only relative ones; `Buffer.from('…')` is no import.
      for (const [, spec] of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)'([^']+)'/gm)) {
        if (spec!.startsWith('.')) {
          const target = path.relative(projectRoot, path.resolve(projectRoot, path.dirname(file), spec!));
          if (!target.startsWith(`${dir}/`)) wrong.push(`${file} imports ${target}`);
        } else if (spec!.startsWith('/')) {
          wrong.push(`${file} imports ${spec} by an absolute path`);
        } else {
          // A bare name: a builtin, the package itself (by its name, as the app reaches it), or a library.
          const library = spec!.startsWith('@') ? spec!.split('/').slice(0, 2).join('/') : spec!.split('/')[0]!;
          if (!(spec!.startsWith('node:') || library === name || libraries.has(library))) wrong.push(`${file} imports ${spec}`);
        }
      }
    }
  }
  expect(wrong).toEqual([]);
});

test('afterReset.sql and the migrations from 000014 on name the roles only by placeholder (src/config/roles.ts names them)', () => {
  const dir = path.join(projectRoot, 'migrations');
  const files = [
    'afterReset.sql',
    ...readdirSync(path.join(dir, 'committed'))
      .filter((f) => f.endsWith('.sql') && Number(f.slice(0, 6)) >= 14)
      .map((f) => `committed/${f}`),
  ];
  expect(files.length).toBeGreaterThanOrEqual(2);
  const literal = /\bsheratan_(app|readonly|anonymous|authenticator)\b/;
  const found = files.flatMap((f) =>
    readFileSync(path.join(dir, f), 'utf8')
      .split('\n')
      .map((line, i) => [`${f}:${i + 1}`, line] as const)
      .filter(([, line]) => literal.test(line.replace(/--.*$/, '')))
      .map(([where]) => where),
  );
  expect(found).toEqual([]);
});

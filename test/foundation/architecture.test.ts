// ARCHITECTURE.md's import rules, checked: each box imports only the boxes
// below it, so the layout keeps showing the architecture.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';

// Each box and what it may import (besides itself and npm packages).
const ALLOWED: Record<string, readonly string[]> = {
  'src/commands': ['src/admin', 'src/operations', 'src/http', 'src/graphql', 'src/database', 'src/embedding', 'src/embedded', 'src/config', 'plugins'],
  'src/cli.ts': ['src/commands'],
  // The operator page: a box above http (it mounts itself on the gateway the commands start) and operations (doctor).
  'src/admin': ['src/operations', 'src/http', 'src/database', 'src/embedding', 'src/config'],
  'src/operations': ['src/database', 'src/embedding', 'src/config'],
  'src/http': ['src/graphql', 'src/database', 'src/embedding', 'src/config', 'plugins'],
  'src/graphql': ['src/database', 'src/config', 'plugins'],
  'src/database': ['src/embedded', 'src/config'],
  'src/embedding': ['src/config'],
  // The ground floor: configuration imports nothing of the project.
  'src/config': [],
  'src/client': [],
  'src/embedded': [],
  plugins: ['src/config'],
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

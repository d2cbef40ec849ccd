import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'scripts',
  'check-monorepo-rules.mjs',
);

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'fleet-rules-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** An import statement for a fixture file, kept out of this file's own text on purpose. */
const importLine = (name: string, from: string) => `import { ${name} } from '${from}';`;

const manifest = (name: string, dependencies: Record<string, string> = {}) =>
  JSON.stringify({ name, dependencies });

const cleanTree = {
  'apps/a/package.json': manifest('@fleet/a', { '@fleet/p': '*' }),
  'apps/a/src/main.ts':
    "import { x } from '@fleet/p';\nimport { route } from './routes/things.js';",
  'apps/a/src/routes/things.ts': importLine('load', '../thing-store.js'),
  'apps/a/src/thing-store.ts': importLine('ThingError', './errors.js'),
  'apps/a/src/errors.ts': 'export class ThingError extends Error {}',
  'apps/b/package.json': manifest('@fleet/b'),
  'packages/p/package.json': manifest('@fleet/p'),
  'packages/p/src/index.ts': 'export const x = 1;',
  'infra/package.json': manifest('@fleet/infra'),
};

// The monorepo-rules check passes a tree that keeps the rules and names every kind of breach.
describe('scripts/check-monorepo-rules.mjs', () => {
  it('accepts a tree that keeps the rules', () => {
    const run = spawnSync(process.execPath, [script, tree(cleanTree)], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('rejects app-to-app imports, package-to-app dependencies, reaching across and layering breaches', () => {
    const root = tree({
      ...cleanTree,
      'apps/a/src/peek.ts': importLine('y', '@fleet/b/dist/secret.js'),
      'apps/a/src/sneak.ts': importLine('z', '../../b/src/z.js'),
      'apps/a/test/fixture.ts': "const main = join(here, '..', '..', 'b', 'dist', 'main.js');",
      'apps/a/src/images.ts': "export const images = new URL('../../b/images', import.meta.url);",
      'apps/a/src/things/thing-store.ts': importLine('route', '../routes/things.js'),
      'apps/a/src/logic.ts': importLine('route', './routes/things.js'),
      'apps/a/src/other-store.ts': importLine('helper', './logic.js'),
      'packages/p/package.json': manifest('@fleet/p', { '@fleet/a': '*' }),
      'packages/p/src/index.ts': `export { a } from '${'@fleet/a'}';`,
    });
    const run = spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('apps/a/src/peek.ts: imports the app @fleet/b');
    expect(run.stderr).toContain('apps/a/src/sneak.ts: reaches outside its workspace');
    expect(run.stderr).toContain('apps/a/test/fixture.ts: builds a path into apps/b');
    expect(run.stderr).toContain('apps/a/src/images.ts: builds a path into apps/b');
    expect(run.stderr).toContain('apps/a/src/things/thing-store.ts: a store file imports');
    expect(run.stderr).toContain('apps/a/src/logic.ts: a services file imports the route');
    expect(run.stderr).toContain('apps/a/src/other-store.ts: a store file imports');
    expect(run.stderr).toContain('@fleet/p: dependencies lists the app @fleet/a');
    expect(run.stderr).toContain('packages/p/src/index.ts: imports the app @fleet/a');
  });

  // npm ci links bins from the lockfile, and only those whose file exists before the build.
  it('rejects a bin the build makes, and a lockfile that records other bins', () => {
    const root = tree({
      ...cleanTree,
      'apps/b/package.json': JSON.stringify({
        name: '@fleet/b',
        bin: { b: 'dist/main.js', 'b-tool': 'bin/b-tool.js' },
      }),
      'apps/b/bin/b-tool.js': "import '../dist/tool.js';",
      'package-lock.json': JSON.stringify({
        packages: { 'apps/b': { bin: { b: 'dist/main.js' } } },
      }),
    });
    const run = spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      'apps/b/package.json: the bin b names dist/main.js, which npm ci cannot link before the build',
    );
    expect(run.stderr).not.toContain('the bin b-tool');
    expect(run.stderr).toContain("package-lock.json: records apps/b's bins as");
  });
});

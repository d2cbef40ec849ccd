#!/usr/bin/env node
// Monorepo rules, checked in `npm test` (see README "Rules"):
//  1. an app never imports another app, and packages and infra never import an app: apps talk
//     over their network APIs only, so each deploys alone;
//  2. a workspace reaches another only through its package name, never a relative path — in an
//     import, or in a path it builds to another workspace's files (`join(here, '..', '..',
//     'corrosion', 'dist', 'main.js')`, `'../../packages/sample-images/images'`);
//  3. no package lists an app among its dependencies (apps may list another app as a
//     devDependency only to spawn its built server in a test);
//  4. layering inside an app: `routes → services → store`. Only the server wiring (main.ts,
//     server.ts) and other routes import `src/routes/`; store files (`src/store/`, `*-store.ts`)
//     import neither routes nor services;
//  5. a workspace's bin names a file of the repository, not one the build makes, and the lockfile
//     records the same: `npm ci` links a bin from the lockfile's record only when its file exists,
//     before anything is built (a `dist/` bin left a fresh clone without `npx fleet`).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

// The tree to check: the repository by default, or the folder given (the rules' own test uses one).
const root = resolve(process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), '..'));
const groups = ['apps', 'packages'];
const workspaces = [];
for (const group of groups) {
  for (const name of readdirSync(join(root, group))) {
    const dir = join(root, group, name);
    if (statSync(join(dir, 'package.json'), { throwIfNoEntry: false })) {
      workspaces.push({ group, dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'))) });
    }
  }
}
workspaces.push({
  group: 'infra',
  dir: join(root, 'infra'),
  pkg: JSON.parse(readFileSync(join(root, 'infra/package.json'))),
});
const appNames = new Set(workspaces.filter((w) => w.group === 'apps').map((w) => w.pkg.name));
const problems = [];

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (/\.(ts|mts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) yield path;
  }
}

const workspaceDirs = workspaces.map((w) => w.dir);
// Paths built from the file's folder: `'..', '..', 'name'` segments, or a `'../../name'` string.
const segmentsPattern = /((?:['"]\.\.['"]\s*,\s*)+)['"]([^'"/]+)['"]/g;
const relativeStringPattern = /['"`]((?:\.\.\/)+[^'"`\s]+)['"`]/g;

/** The other workspace a path from `file`'s folder lands in, if any. */
function reachedWorkspace(file, ownDir, pathFromFileDir) {
  const target = resolve(dirname(file), pathFromFileDir);
  if (target.startsWith(ownDir + sep) || target === ownDir) return undefined;
  return workspaceDirs.find((dir) => target === dir || target.startsWith(dir + sep));
}

const importPattern =
  /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)/g;

function layerOf(file, srcDir) {
  const path = relative(srcDir, file).split(sep).join('/');
  if (path.startsWith('routes/')) return 'routes';
  if (path.startsWith('store/') || /-store\.[mc]?[jt]s$/.test(path)) return 'store';
  if (/^(main|server)\.[mc]?[jt]s$/.test(path)) return 'wiring';
  return 'services';
}

for (const workspace of workspaces) {
  const { dir, pkg, group } = workspace;
  for (const field of ['dependencies', 'peerDependencies']) {
    for (const dep of Object.keys(pkg[field] ?? {})) {
      if (appNames.has(dep)) problems.push(`${pkg.name}: ${field} lists the app ${dep}`);
    }
  }
  for (const sub of ['src', 'test', 'bench']) {
    const base = join(dir, sub);
    if (!statSync(base, { throwIfNoEntry: false })) continue;
    for (const file of sourceFiles(base)) {
      const text = readFileSync(file, 'utf8');
      const shown = relative(root, file);
      const imported = new Set();
      for (const match of text.matchAll(importPattern))
        imported.add(match[1] ?? match[2] ?? match[3] ?? match[4]);
      for (const match of text.matchAll(segmentsPattern)) {
        const ups = match[1].match(/\.\./g).length;
        const path = [...Array(ups).fill('..'), match[2]].join('/');
        const reached = reachedWorkspace(file, dir, path);
        if (reached)
          problems.push(
            `${shown}: builds a path into ${relative(root, reached)} (resolve it by package name)`,
          );
      }
      for (const match of text.matchAll(relativeStringPattern)) {
        if (imported.has(match[1])) continue;
        const reached = reachedWorkspace(file, dir, match[1]);
        if (reached)
          problems.push(
            `${shown}: builds a path into ${relative(root, reached)} (resolve it by package name)`,
          );
      }
      for (const match of text.matchAll(importPattern)) {
        const spec = match[1] ?? match[2] ?? match[3] ?? match[4];
        if (appNames.has(spec.split('/').slice(0, 2).join('/')) && !spec.startsWith(pkg.name)) {
          problems.push(
            `${shown}: imports the app ${spec} (${group === 'apps' ? 'apps talk over the network' : 'only apps may be deployed alone'})`,
          );
        }
        if (spec.startsWith('.')) {
          const target = resolve(dirname(file), spec);
          if (!target.startsWith(dir + sep))
            problems.push(`${shown}: reaches outside its workspace with ${spec}`);
          if (group === 'apps' && sub === 'src')
            checkLayer(file, target, join(dir, 'src'), shown, spec);
        }
      }
    }
  }
}

function checkLayer(file, target, srcDir, shown, spec) {
  if (!target.startsWith(srcDir + sep)) return;
  const from = layerOf(file, srcDir);
  const to = layerOf(target.replace(/\.js$/, '.ts'), srcDir);
  if (to === 'routes' && from !== 'routes' && from !== 'wiring') {
    problems.push(`${shown}: a ${from} file imports the route ${spec} (routes → services → store)`);
  }
  if (from === 'store' && (to === 'routes' || to === 'services') && isServiceFile(target)) {
    problems.push(
      `${shown}: a store file imports ${spec} from the ${to} layer (routes → services → store)`,
    );
  }
}

// Neutral modules (errors, metrics, diagnostics, types, config) may be imported from any layer.
function isServiceFile(target) {
  return !/(^|[\\/])(errors|metrics|diagnostics|types|config|schema)\.(js|ts)$/.test(target);
}

const lockFile = join(root, 'package-lock.json');
const lock = existsSync(lockFile) ? JSON.parse(readFileSync(lockFile, 'utf8')) : undefined;
for (const { dir, pkg } of workspaces) {
  const shown = relative(root, dir);
  for (const [name, target] of Object.entries(pkg.bin ?? {})) {
    if (target.split('/')[0] === 'dist' || !existsSync(join(dir, target)))
      problems.push(
        `${shown}/package.json: the bin ${name} names ${target}, which npm ci cannot link before the build (name a committed file that runs it)`,
      );
  }
  const recorded = sortedJson(lock?.packages?.[shown]?.bin);
  if (lock !== undefined && recorded !== sortedJson(pkg.bin))
    problems.push(
      `package-lock.json: records ${shown}'s bins as ${recorded}, its package.json says ${sortedJson(pkg.bin)} (npm install --package-lock-only)`,
    );
}

/** A bin map as JSON, its names in order (npm's lockfile sorts them). */
function sortedJson(bins) {
  return JSON.stringify(Object.entries(bins ?? {}).sort(([a], [b]) => a.localeCompare(b)));
}

if (problems.length > 0) {
  console.error(
    `monorepo rules: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join('\n')}`,
  );
  process.exit(1);
}
console.log(`monorepo rules: ${workspaces.length} workspaces checked, no problems`);

#!/usr/bin/env node
// Reads a test log (turbo prefixes each line with `@fleet/<name>:test: `) and prints one line per
// workspace from vitest's "Tests  N passed | M failed" line, then one closing line summing them,
// "tests: N passed, M failed", so a CI reader sees every workspace at a glance even when one of
// them failed (turbo runs with --continue). A workspace whose test task failed without a counts
// line (a crash, a type error) is named too, and fails the run.
import { readFileSync } from 'node:fs';
import { stripVTControlCharacters } from 'node:util';

const text = stripVTControlCharacters(readFileSync(process.argv[2] ?? 0, 'utf8'));
const counts = new Map();
let passed = 0;
let failed = 0;
let skipped = 0;
for (const line of text.split('\n')) {
  const workspace = /^(@fleet\/[\w-]+):test:/.exec(line)?.[1] ?? '(unprefixed)';
  const body = line.replace(/^@fleet\/[\w-]+:test:\s*/, '').trimStart();
  if (!/^\S*\s*Tests\s+\d/.test(body)) continue;
  const figures = {
    passed: Number(/(\d+) passed/.exec(body)?.[1] ?? 0),
    failed: Number(/(\d+) failed/.exec(body)?.[1] ?? 0),
    skipped: Number(/(\d+) skipped/.exec(body)?.[1] ?? 0),
  };
  counts.set(workspace, figures);
  passed += figures.passed;
  failed += figures.failed;
  skipped += figures.skipped;
}

// turbo's closing "Failed:    @fleet/a#test, @fleet/b#test" line names the tasks that exited non-zero.
const crashed = new Set(
  text
    .split('\n')
    .filter((line) => /^\s*Failed:/.test(line))
    .flatMap((line) => [...line.matchAll(/(@fleet\/[\w-]+)#test/g)].map((match) => match[1])),
);
for (const [workspace, figures] of counts) {
  const state = crashed.has(workspace) ? ' (task failed)' : '';
  console.log(
    `${workspace}: ${figures.passed} passed, ${figures.failed} failed` +
      `${figures.skipped ? `, ${figures.skipped} skipped` : ''}${state}`,
  );
}
for (const workspace of crashed) {
  if (!counts.has(workspace)) console.log(`${workspace}: task failed before counting its tests`);
}
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || crashed.size > 0 || passed === 0 ? 1 : 0);

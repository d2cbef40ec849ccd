#!/usr/bin/env node
// Sums vitest's per-workspace "Tests  N passed | M failed (T)" lines from a test log into one
// closing line, "tests: N passed, M failed", so a CI reader sees the whole run at a glance.
import { readFileSync } from 'node:fs';
import { stripVTControlCharacters } from 'node:util';

const text = stripVTControlCharacters(readFileSync(process.argv[2] ?? 0, 'utf8'));
let passed = 0;
let failed = 0;
let skipped = 0;
for (const line of text.split('\n')) {
  if (!/^\S*\s*Tests\s+\d/.test(line.replace(/^@fleet\/[\w-]+:test:\s*/, '').trimStart())) continue;
  passed += Number(/(\d+) passed/.exec(line)?.[1] ?? 0);
  failed += Number(/(\d+) failed/.exec(line)?.[1] ?? 0);
  skipped += Number(/(\d+) skipped/.exec(line)?.[1] ?? 0);
}
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);

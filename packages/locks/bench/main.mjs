// `npm run bench -w packages/locks`: ns per operation of RwLock beside async-mutex,
// async-rwlock and await-lock, measured in the same run (each in a fresh process), then
// SharedRwLock on one thread and across two worker threads.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { measureShared } from './shared.mjs';
import { subjects } from './subjects.mjs';

const operations = 100_000;
const rounds = 5;
const measure = fileURLToPath(new URL('./measure.mjs', import.meta.url));

const results = Object.keys(subjects).map((name) => [
  name,
  JSON.parse(
    execFileSync(process.execPath, [measure, name, String(operations), String(rounds)], {
      encoding: 'utf8',
    }),
  ),
]);
const baselines = results.filter(([name]) => !name.startsWith('RwLock'));
for (const scenario of Object.keys(results[0][1])) {
  console.log(`\n${scenario} (${operations} operations, median of ${rounds}, instrumentation on)`);
  const fastestBaseline = Math.min(...baselines.map(([, figures]) => figures[scenario]));
  for (const [name, figures] of results) {
    const ns = figures[scenario];
    console.log(
      `  ${name.padEnd(26)} ${ns.toFixed(0).padStart(6)} ns/op   ${(ns / fastestBaseline).toFixed(2)}x the fastest baseline`,
    );
  }
}

const shared = await measureShared(rounds);
console.log(`\nSharedRwLock (median of ${rounds})`);
console.log(`  uncontended read             ${shared.read.toFixed(0).padStart(6)} ns/op`);
console.log(`  uncontended write            ${shared.write.toFixed(0).padStart(6)} ns/op`);
console.log(
  `  2 workers, 9:1 contended     ${shared.contended.toFixed(0).padStart(6)} ns/op (wall time per operation, worker start included)`,
);
console.log(`  lock word at the end         ${shared.word}`);

// `npm run bench -w packages/locks`: ns per operation of RwLock beside await-lock, async-rwlock
// and async-mutex, every subject under the same conditions (measure.mjs: the OpenTelemetry SDK
// installed with a Prometheus reader, AsyncLocalStorage active in the process), each in a fresh
// process. The machine is shared and noisy, so every subject runs in each of several passes, in
// a rotated order, and the median of the passes is reported; ratios compare figures of the same
// run only. Then SharedRwLock, on one worker thread and across two.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { measureShared } from './shared.mjs';
import { subjects } from './subjects.mjs';

const operations = Number(process.env.BENCH_OPERATIONS ?? 100_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const passes = Number(process.env.BENCH_PASSES ?? 5);
const measure = fileURLToPath(new URL('./measure.mjs', import.meta.url));
const names = Object.keys(subjects);
const ours = names.filter((name) => name.startsWith('RwLock'));
const baselines = names.filter((name) => !name.startsWith('RwLock'));
/** What each scenario's figure must not exceed (issue 12): ours, trackAsync on, against it. */
const targets = {
  'uncontended read': 'await-lock (AwaitLock)',
  'uncontended write': 'await-lock (AwaitLock)',
  'contended 9:1 read/write': 'async-rwlock (RWLock)',
};

const samples = Object.fromEntries(names.map((name) => [name, []]));
for (let pass = 0; pass < passes; pass++) {
  for (let index = 0; index < names.length; index++) {
    const name = names[(index + pass) % names.length];
    const figures = execFileSync(
      process.execPath,
      [measure, name, String(operations), String(rounds)],
      { encoding: 'utf8' },
    );
    samples[name].push(JSON.parse(figures));
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const figure = (name, scenario) => median(samples[name].map((result) => result[scenario]));
const spread = (name, scenario) => {
  const values = samples[name].map((result) => result[scenario]);
  return `${Math.min(...values).toFixed(0)}-${Math.max(...values).toFixed(0)}`;
};
const ns = (value) => `${value.toFixed(0).padStart(5)} ns`;

console.log(
  `${operations} operations per round, median of ${rounds} rounds per process, median of ${passes} passes`,
);
console.log('conditions for every subject: OpenTelemetry SDK + Prometheus reader, ALS active');
for (const scenario of Object.keys(samples[names[0]][0])) {
  console.log(`\n${scenario}`);
  for (const name of names)
    console.log(
      `  ${name.padEnd(26)} ${ns(figure(name, scenario))}/op   (passes ${spread(name, scenario)})`,
    );
  for (const mine of ours) {
    for (const baseline of baselines) {
      const ratio = figure(mine, scenario) / figure(baseline, scenario);
      console.log(
        `  ${mine} ${ns(figure(mine, scenario))} vs ${baseline} ${ns(figure(baseline, scenario))}: ${ratio.toFixed(2)}x`,
      );
    }
  }
  const mine = figure('RwLock (ours, ALS on)', scenario);
  const tracking = mine - figure('RwLock (ours, ALS off)', scenario);
  console.log(
    `  re-entry tracking across await (ours, ALS on - off): ${tracking.toFixed(0)} ns/op`,
  );
  if (targets[scenario] === undefined) continue;
  const limit = figure(targets[scenario], scenario);
  console.log(
    `  target: ours (ALS on) at most ${targets[scenario]}: ${mine <= limit ? 'met' : 'NOT met'} (${(mine / limit).toFixed(2)}x)`,
  );
}

const shared = await measureShared(rounds);
console.log(`\nSharedRwLock (median of ${rounds})`);
console.log(`  uncontended read, worker thread        ${ns(shared.read)}/op`);
console.log(`  uncontended write, worker thread       ${ns(shared.write)}/op`);
console.log(`  uncontended readAsync, main thread     ${ns(shared.readAsync)}/op`);
console.log(
  `  2 workers, 9:1 contended               ${ns(shared.contended)}/op (wall time per operation, worker start included)`,
);
console.log(`  lock word at the end                   ${shared.word}`);

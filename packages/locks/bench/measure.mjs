// One subject, every scenario, in a process of its own: AsyncLocalStorage turns on promise hooks
// for the whole process, so a subject that uses it must not slow the ones measured after it.
// Instrumentation is on: an OpenTelemetry SDK meter provider collects every lock metric.
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { scenarios } from './scenarios.mjs';
import { subjects } from './subjects.mjs';

class CollectingReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new CollectingReader()] }));

const [name, operations, rounds] = [
  process.argv[2],
  Number(process.argv[3]),
  Number(process.argv[4]),
];
const results = {};
for (const [scenario, run] of Object.entries(scenarios)) {
  const subject = subjects[name]();
  await run(subject, operations); // warm-up
  const samples = [];
  for (let round = 0; round < rounds; round++) {
    const started = process.hrtime.bigint();
    await run(subject, operations);
    samples.push(Number(process.hrtime.bigint() - started) / operations);
  }
  results[scenario] = samples.sort((a, b) => a - b)[Math.floor(rounds / 2)];
}
process.stdout.write(JSON.stringify(results));

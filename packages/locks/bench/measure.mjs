// One subject, every scenario, in a process of its own, under the conditions of fly-proxy for
// every subject alike: the OpenTelemetry SDK installed with a Prometheus reader (as
// @fleet/service's startMetrics does), and AsyncLocalStorage active in the process (a request
// context entered), which turns on promise hooks and makes every promise dearer.
import { AsyncLocalStorage } from 'node:async_hooks';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { scenarios } from './scenarios.mjs';
import { subjects } from './subjects.mjs';

const exporter = new PrometheusExporter({ preventServerStart: true });
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
new AsyncLocalStorage().enterWith({ request: 'bench' });

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
// A collection at the end, so that the exporter's cost is not silently skipped.
await exporter.collect();
process.stdout.write(JSON.stringify(results));

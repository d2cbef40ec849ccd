import { present } from '@fleet/service/invariant';
import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it } from 'vitest';
import { engineAt, freshDbPath } from './engine-helpers.js';

// The engine emits a span per run and a child span per step attempt, through the OTel API; the
// SDK's in-memory exporter collects them.
describe('FsmEngine tracing', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  afterAll(() => provider.shutdown());

  it('records a run span with one child span per step attempt, the failed attempt as an error', async () => {
    const { engine } = engineAt(freshDbPath(), {
      retry: { retriesMax: 1, delayMs: 1, delayMsMax: 1 },
    });
    let tries = 0;
    engine.define('traced', {
      steps: [
        { name: 'first', run: () => 1 },
        {
          name: 'second',
          run: () => {
            if (++tries === 1) throw new Error('once');
            return 2;
          },
        },
      ],
    });
    const run = engine.start('m1', 'traced', {});
    await run.done;
    const spans = exporter.getFinishedSpans();
    const runSpan = present(
      spans.find((span) => span.name === 'fsm.run traced'),
      'spans.find((span) => span.name === fsm.run traced)',
    );
    expect(runSpan.attributes).toMatchObject({
      'fsm.run_id': run.id,
      'fly.machine_id': 'm1',
      'fsm.status': 'succeeded',
    });
    const steps = spans.filter((span) => span.name.startsWith('fsm.step'));
    expect(
      steps.map((span) => `${span.name}#${span.attributes['fsm.attempt']}:${span.status.code}`),
    ).toEqual(['fsm.step first#0:1', 'fsm.step second#0:2', 'fsm.step second#1:1']);
    for (const step of steps) {
      expect(step.parentSpanContext?.spanId).toBe(runSpan.spanContext().spanId);
      expect(step.spanContext().traceId).toBe(runSpan.spanContext().traceId);
    }
  });
});

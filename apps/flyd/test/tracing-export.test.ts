import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, FlydFixture, hello } from './flyd-fixture.js';

interface OtlpSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
}

// With the standard OTLP variables set, flyd ships its FSM spans (a run and its steps) to a
// collector over HTTP: here a collector the test runs, reading OTLP's JSON bodies.
describe('flyd exports FSM spans over OTLP', () => {
  const fixture = new FlydFixture();
  const spans: OtlpSpan[] = [];
  let collector: Server;
  let api: string;

  beforeAll(async () => {
    collector = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => {
        body += chunk;
      });
      request.on('end', () => {
        const sent = JSON.parse(body) as {
          resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
        };
        for (const resource of sent.resourceSpans) {
          for (const scope of resource.scopeSpans) spans.push(...scope.spans);
        }
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const { port } = collector.address() as AddressInfo;
    await fixture.startCorrosion();
    api = await fixture.startFlyd({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
  });
  afterAll(async () => {
    await fixture.close();
    collector.close();
  });

  it('sends a run span with its steps as children', async () => {
    const created = await call(api, 'POST', '/v1/machines', {
      id: 'a1b2c3d4e5f607',
      app: 'traced',
      config: hello,
    });
    expect(created?.status).toBe(200);
    const run = await until('the create run span', async () =>
      spans.find((span) => span.name === 'fsm.run create'),
    );
    const steps = spans.filter((span) => span.parentSpanId === run.spanId);
    expect(steps.map((span) => span.name)).toContain('fsm.step reserve');
    for (const step of steps) expect(step.traceId).toBe(run.traceId);
  });
});

import { metrics } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createHttpServer,
  createLogger,
  HttpError,
  listenHttp,
  localHistogram,
  type MetricsExport,
  startMetrics,
} from '../src/index.js';

// A real fastify server on an ephemeral port, spoken to with fetch.
describe('createHttpServer', () => {
  const logger = createLogger('test');
  logger.level = 'silent';
  let exporter: MetricsExport;
  let url: string;
  const app = (() => {
    exporter = startMetrics('fleet-test');
    const server = createHttpServer({ logger, metrics: exporter });
    server.post(
      '/things',
      {
        schema: {
          body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
        },
      },
      async (request) => request.body,
    );
    server.post('/empty', async (request) => ({ body: request.body ?? null }));
    server.get('/teapot', async () => {
      throw new HttpError(418, 'TEAPOT', 'short and stout');
    });
    server.get('/boom', async () => {
      throw new Error('secret detail');
    });
    return server;
  })();

  beforeAll(async () => {
    url = await listenHttp(app, '127.0.0.1:0');
    metrics.getMeter('test').createCounter('fleet_test_hits').add(2);
  });
  afterAll(async () => {
    await app.close();
    await exporter.shutdown();
  });

  // Validation errors are 400 with a message naming the field.
  it('answers bad bodies with a 400 naming the field', async () => {
    const response = await fetch(`${url}/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({}),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: string; code: string };
    expect(body.error).toContain('name');
    expect(body.code).toBe('BAD_REQUEST');
  });

  // Malformed JSON is a 400 that says so; an empty JSON body is accepted as no body.
  it('handles malformed and empty JSON bodies', async () => {
    const bad = await fetch(`${url}/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name":',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('BAD_JSON');
    const empty = await fetch(`${url}/empty`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    expect(await empty.json()).toEqual({ body: null });
  });

  // A body that is not JSON is refused for its type, before any route's schema sees it.
  it('answers a text body with 415 naming its type', async () => {
    const text = await fetch(`${url}/things`, { method: 'POST', body: '{"name":"a"}' });
    expect(text.status).toBe(415);
    const body = (await text.json()) as { error: string; code: string };
    expect(body.error).toContain('text/plain');
    expect(body.code).toBe('FST_ERR_CTP_INVALID_MEDIA_TYPE');
  });

  // HttpError keeps its status and code; unexpected errors hide their detail behind a 500.
  it('renders HttpError and hides internal errors', async () => {
    const teapot = await fetch(`${url}/teapot`);
    expect(teapot.status).toBe(418);
    expect(await teapot.json()).toEqual({ error: 'short and stout', code: 'TEAPOT' });
    const boom = await fetch(`${url}/boom`);
    expect(boom.status).toBe(500);
    expect(JSON.stringify(await boom.json())).not.toContain('secret');
    const missing = await fetch(`${url}/nowhere`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { code: string }).code).toBe('NO_ROUTE');
  });

  // Instruments recorded through @opentelemetry/api appear on /metrics.
  it('exports metrics for Prometheus', async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/fleet_test_hits_total\{[^}]*\} 2/);
    expect(text).toContain('service_name="fleet-test"');
  });

  // A local histogram is aggregated in the process and exported as a Prometheus histogram at
  // collection: buckets cumulative by `le`, one series per label value, sum and count.
  it('exports local histograms as histograms, one series per label value', async () => {
    const histogram = localHistogram('fleet_test_wait_ms', {
      scope: 'fleet.test',
      description: 'test waits',
      unit: 'ms',
      label: 'app',
      boundaries: [1, 10],
    });
    expect(
      localHistogram('fleet_test_wait_ms', { scope: '', description: '', unit: '', label: '' }),
    ).toBe(histogram);
    for (const value of [0, 1, 2, 10, 11]) histogram.record('web', value);
    histogram.record('api', 3);
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toContain('# TYPE fleet_test_wait_ms histogram');
    const web = (le: string) =>
      new RegExp(
        `fleet_test_wait_ms_bucket\\{app="web",otel_scope_name="fleet.test",le="${le}"\\} (\\d+)`,
      );
    expect(text.match(web('1'))?.[1]).toBe('2');
    expect(text.match(web('10'))?.[1]).toBe('4');
    expect(text.match(web('\\+Inf'))?.[1]).toBe('5');
    expect(text).toMatch(/fleet_test_wait_ms_sum\{app="web",[^}]*\} 24/);
    expect(text).toMatch(/fleet_test_wait_ms_count\{app="web",[^}]*\} 5/);
    expect(text).toMatch(/fleet_test_wait_ms_count\{app="api",[^}]*\} 1/);
    histogram.record('web', 1);
    const again = await (await fetch(`${url}/metrics`)).text();
    expect(again).toMatch(/fleet_test_wait_ms_count\{app="web",[^}]*\} 6/); // cumulative
  });
});

import type { IncomingMessage, ServerResponse } from 'node:http';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { droppedLogLines } from './log-destination.js';

export interface MetricsExport {
  /** Serves the Prometheus text format; mount it on GET /metrics. */
  handle(request: IncomingMessage, response: ServerResponse): void;
  shutdown(): Promise<void>;
}

/**
 * Installs the process-wide OpenTelemetry meter provider with a Prometheus reader. Code everywhere
 * records through `@opentelemetry/api`; only this file knows the SDK. The exporter's own HTTP
 * server is not started: each service serves /metrics on its own listener.
 */
export function startMetrics(serviceName: string): MetricsExport {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({
    readers: [exporter],
    resource: resourceFromAttributes({ 'service.name': serviceName }),
  });
  metrics.setGlobalMeterProvider(provider);
  provider
    .getMeter('fleet.service')
    .createObservableCounter('log_lines_dropped', {
      description: 'log lines not written because stdout was blocked or closed, by reason',
    })
    .addCallback((result) => {
      for (const [reason, count] of Object.entries(droppedLogLines))
        result.observe(count, { reason });
    });
  return {
    handle: (request, response) => exporter.getMetricsRequestHandler(request, response),
    shutdown: async () => {
      await provider.shutdown();
      metrics.disable();
    },
  };
}

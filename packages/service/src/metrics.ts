import type { IncomingMessage, ServerResponse } from 'node:http';
import { metrics, ValueType } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type HistogramMetricData,
  MeterProvider,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { localHistograms } from './local-histogram.js';
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
  const resource = resourceFromAttributes({ 'service.name': serviceName });
  const exporter = new PrometheusExporter({
    preventServerStart: true,
    metricProducers: [localHistogramProducer(resource)],
  });
  const provider = new MeterProvider({ readers: [exporter], resource });
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

/** Exports the process's local histograms (local-histogram.ts) as they stand at collection. */
function localHistogramProducer(
  resource: ReturnType<typeof resourceFromAttributes>,
): MetricProducer {
  return {
    collect: async (): Promise<CollectionResult> => {
      const endTime = millisToHrTime(Date.now());
      const scopes = new Map<string, HistogramMetricData[]>();
      for (const histogram of localHistograms()) {
        const startTime = millisToHrTime(histogram.startedMs);
        let scope = scopes.get(histogram.scope);
        if (scope === undefined) {
          scope = [];
          scopes.set(histogram.scope, scope);
        }
        scope.push({
          descriptor: {
            name: histogram.name,
            description: histogram.description,
            unit: histogram.unit,
            valueType: ValueType.DOUBLE,
          },
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.HISTOGRAM,
          dataPoints: [...histogram.series()].map((series) => ({
            startTime,
            endTime,
            attributes: { [histogram.label]: series.labelValue },
            value: {
              buckets: { boundaries: [...histogram.boundaries], counts: [...series.counts] },
              count: series.count,
              sum: series.sum,
              min: series.min,
              max: series.max,
            },
          })),
        });
      }
      return {
        resourceMetrics: {
          resource,
          scopeMetrics: [...scopes].map(([name, metrics]) => ({ scope: { name }, metrics })),
        },
        errors: [],
      };
    },
  };
}

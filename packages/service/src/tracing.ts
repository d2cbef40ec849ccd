import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

export interface TracingExport {
  /** Whether spans leave the process (an OTLP endpoint is configured). */
  exporting: boolean;
  /** Sends the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}

/**
 * Installs the process-wide tracer provider when an OTLP endpoint is configured through the
 * standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
 * OTLP over HTTP with JSON bodies); the exporter reads them, and `OTEL_BSP_*` tune the batching.
 * Without one, `@opentelemetry/api`'s tracers stay no-ops and cost nothing.
 */
export function startTracing(serviceName: string): TracingExport {
  const configured =
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (!configured) return { exporting: false, shutdown: async () => undefined };
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  return { exporting: true, shutdown: () => provider.shutdown() };
}

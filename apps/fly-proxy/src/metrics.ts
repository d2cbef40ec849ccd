import { metrics } from '@opentelemetry/api';

/** Every instrument of fly-proxy, in one place. */
export function proxyMetrics() {
  const meter = metrics.getMeter('fleet.fly-proxy');
  return {
    requests: meter.createCounter('proxy_requests', { description: 'requests by app and status' }),
    upstreamMs: meter.createHistogram('proxy_upstream_ms', {
      description: 'time from forwarding to the machine answering headers',
      unit: 'ms',
    }),
  };
}

export type ProxyMetrics = ReturnType<typeof proxyMetrics>;

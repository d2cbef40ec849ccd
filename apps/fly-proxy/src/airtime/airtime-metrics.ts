import { metrics } from '@opentelemetry/api';
import type { Airtime } from './airtime.js';

/**
 * Airtime's instruments, all observed at collection time from the Airtime object. Per-app
 * series are bounded (throttled-totals.ts): at most 20 named apps and `other`.
 */
export function registerAirtimeMetrics(airtime: Airtime): void {
  const meter = metrics.getMeter('fleet.fly-proxy');
  const gauge = (name: string, description: string, read: () => number | undefined) =>
    meter.createObservableGauge(name, { description }).addCallback((result) => {
      const value = read();
      if (value !== undefined) result.observe(value);
    });
  gauge(
    'proxy_airtime_host_cpu_busy_ratio',
    'busy share of the host CPU (softirq included) at the last sample, 0..1',
    () => airtime.load?.cpuBusyRatio,
  );
  gauge(
    'proxy_airtime_host_softirq_ratio',
    'softirq share of the host CPU at the last sample, 0..1',
    () => airtime.load?.softirqRatio,
  );
  gauge(
    'proxy_airtime_host_network_bytes_per_second',
    "bytes per second on the host's interfaces (all but lo, in + out) at the last sample",
    () => airtime.load?.networkBytesPerSecond,
  );
  gauge(
    'proxy_airtime_budget_bytes_per_second',
    "the proxy's host-wide budget while the host is over its headroom (absent: unlimited)",
    () => airtime.budget.bytesPerSecond ?? undefined,
  );
  meter
    .createObservableGauge('proxy_airtime_pressure', {
      description: 'host over its configured headroom, by reason (host_cpu, host_network): 1 or 0',
    })
    .addCallback((result) => {
      for (const reason of ['host_cpu', 'host_network'] as const)
        result.observe(airtime.budget.pressure.includes(reason) ? 1 : 0, { reason });
    });
  meter
    .createObservableGauge('proxy_airtime_throttled_apps', {
      description: 'apps throttled now, by why (host_cpu, host_network, app_limit, strict)',
    })
    .addCallback((result) => {
      const counts = new Map<string, number>();
      for (const each of airtime.meters())
        if (each.throttled && each.limitedBy !== undefined)
          counts.set(each.limitedBy, (counts.get(each.limitedBy) ?? 0) + 1);
      for (const reason of ['host_cpu', 'host_network', 'app_limit', 'strict'])
        result.observe(counts.get(reason) ?? 0, { reason });
    });
  const throttledMs = meter.createObservableCounter('proxy_airtime_throttled_ms', {
    description: 'time flows of an app spent paused by Airtime (20 apps named, the rest "other")',
  });
  const throttledBytes = meter.createObservableCounter('proxy_airtime_throttled_bytes', {
    description:
      'bytes of an app that moved while it was over its rate (20 apps named, the rest "other")',
  });
  meter.addBatchObservableCallback(
    (result) => {
      for (const [app, totals] of airtime.throttledTotals().series()) {
        result.observe(throttledMs, Math.round(totals.ms), { app });
        result.observe(throttledBytes, totals.bytes, { app });
      }
    },
    [throttledMs, throttledBytes],
  );
  meter
    .createObservableCounter('proxy_airtime_refusals', {
      description:
        'new requests and connections refused 503 past an app hard cap, by reason (requests, bandwidth)',
    })
    .addCallback((result) => {
      for (const [reason, count] of airtime.refused) result.observe(count, { reason });
    });
  meter
    .createObservableCounter('proxy_airtime_sample_errors', {
      description: 'host samples that could not be read or parsed (/proc/stat, /proc/net/dev)',
    })
    .addCallback((result) => result.observe(airtime.sampleErrors));
}

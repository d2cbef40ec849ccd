import { metrics } from '@opentelemetry/api';

/** What the gauges read from a Catalog at collection time (no cost per request). */
export interface CatalogGaugeSource {
  gauges(): { loadedApps: number; loadsRunning: number; loadsQueued: number; machines: number };
}

/** Every instrument of the Catalog, in one place. */
export function catalogMetrics(source: CatalogGaugeSource) {
  const meter = metrics.getMeter('fleet.catalog');
  const source$ = new WeakRef(source);
  meter
    .createObservableGauge('catalog_apps_loaded', { description: 'apps held in memory' })
    .addCallback((result) => {
      const gauges = source$.deref()?.gauges();
      if (gauges) result.observe(gauges.loadedApps);
    });
  meter
    .createObservableGauge('catalog_machines', { description: 'machines held in memory' })
    .addCallback((result) => {
      const gauges = source$.deref()?.gauges();
      if (gauges) result.observe(gauges.machines);
    });
  meter
    .createObservableGauge('catalog_loads', { description: 'lazy loads, by state' })
    .addCallback((result) => {
      const gauges = source$.deref()?.gauges();
      if (!gauges) return;
      result.observe(gauges.loadsRunning, { state: 'running' });
      result.observe(gauges.loadsQueued, { state: 'queued' });
    });
  return {
    applied: meter.createCounter('catalog_rows_applied', {
      description: 'row events applied, by table',
    }),
    badRows: meter.createCounter('catalog_rows_rejected', {
      description: 'rows the Catalog could not use (skipped, the rest goes on), by table',
    }),
    resets: meter.createCounter('catalog_resets', {
      description: 'subscriptions started over, by table',
    }),
    updateFailures: meter.createCounter('catalog_update_failures', {
      description: 'updates not applied (write lock timeout): the app is reloaded on next use',
    }),
    loads: meter.createCounter('catalog_loads_total', {
      description: 'lazy loads finished, by outcome (ok, failed, shed, timeout)',
    }),
    loadMs: meter.createHistogram('catalog_load_ms', {
      description: 'lazy load duration, queue wait included',
      unit: 'ms',
    }),
    negativeHits: meter.createCounter('catalog_negative_hits', {
      description: 'lookups answered from the negative cache, by kind (app, host)',
    }),
    evictions: meter.createCounter('catalog_evictions', {
      description: 'idle apps evicted past maxLoadedApps',
    }),
    admission: meter.createCounter('catalog_admission', {
      description: 'waits for capacity, by outcome (admitted, shed, timeout)',
    }),
  };
}

export type CatalogMetrics = ReturnType<typeof catalogMetrics>;

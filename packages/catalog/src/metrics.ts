import { metrics } from '@opentelemetry/api';

/** What the gauges read from a Catalog at collection time (no cost per request). */
export interface CatalogGaugeSource {
  gauges(): {
    loadedApps: number;
    loadsRunning: number;
    loadsQueued: number;
    machines: number;
    staleTables: number;
    quarantined: number;
  };
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
  meter
    .createObservableGauge('catalog_stale_tables', {
      description: 'followed tables detached or silent past staleAfterMs (0 when fresh)',
    })
    .addCallback((result) => {
      const gauges = source$.deref()?.gauges();
      if (gauges) result.observe(gauges.staleTables);
    });
  meter
    .createObservableGauge('catalog_quarantined_apps', {
      description: 'apps quarantined now for an update at fault',
    })
    .addCallback((result) => {
      const gauges = source$.deref()?.gauges();
      if (gauges) result.observe(gauges.quarantined);
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
      description:
        'updates not applied, by label: the app is resynced (lock refused) or quarantined (at fault)',
    }),
    quarantined: meter.createCounter('catalog_quarantined_updates', {
      description: 'updates at fault whose app was quarantined, by reason (throws, reentrant)',
    }),
    quarantineSkipped: meter.createCounter('catalog_quarantine_skipped_updates', {
      description: 'updates of a quarantined app left to its resync, by table',
    }),
    quarantineReleased: meter.createCounter('catalog_quarantine_released', {
      description: 'quarantined apps released by a clean resync',
    }),
    unreachable: meter.createCounter('catalog_machines_unreachable', {
      description: 'machines reported unreachable (ranked last until they answer or the TTL ends)',
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

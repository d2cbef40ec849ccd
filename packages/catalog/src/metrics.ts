import { metrics } from '@opentelemetry/api';

/** Every instrument of the Catalog, in one place. */
export function catalogMetrics() {
  const meter = metrics.getMeter('fleet.catalog');
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
  };
}

import { metrics } from '@opentelemetry/api';

/** Every instrument of flaps, in one place. */
export function flapsMetrics() {
  const meter = metrics.getMeter('fleet.flaps');
  return {
    requests: meter.createCounter('flaps_requests', {
      description: 'API requests by route, method and status',
    }),
    placementFailures: meter.createCounter('flaps_placement_failures', {
      description: 'creates refused for lack of capacity',
    }),
  };
}

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
    hostStatusChanges: meter.createCounter('flaps_host_status_changes', {
      description: 'hosts set down (corrosion dead to SWIM) or ready again, by the new status',
    }),
  };
}

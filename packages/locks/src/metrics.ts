import { metrics } from '@opentelemetry/api';

/** Every instrument of @fleet/locks, in one place; attributes: lock, label, mode. */
export function lockMetrics() {
  const meter = metrics.getMeter('fleet.locks');
  return {
    waitMs: meter.createHistogram('lock_wait_ms', {
      description: 'time from request to grant',
      unit: 'ms',
    }),
    holdMs: meter.createHistogram('lock_hold_ms', {
      description: 'time from grant to release',
      unit: 'ms',
    }),
    timeouts: meter.createCounter('lock_timeouts', { description: 'acquisitions that timed out' }),
    reentries: meter.createCounter('lock_reentries', {
      description: 're-entrant requests refused',
    }),
    queueFull: meter.createCounter('lock_queue_full', {
      description: 'requests refused: queue full',
    }),
    slowHolds: meter.createCounter('lock_slow_holds', {
      description: 'holds longer than holdMsMax',
    }),
    queueDepth: meter.createUpDownCounter('lock_queue_depth', { description: 'requests waiting' }),
  };
}

export type LockMetrics = ReturnType<typeof lockMetrics>;

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
  };
}

export type LockMetrics = ReturnType<typeof lockMetrics>;

/** What the queue-depth gauge reads from a lock. */
export interface QueueSource {
  readonly name: string;
  queueLength(): number;
}

const watched = new Set<WeakRef<QueueSource>>();
let gaugeRegistered = false;

/**
 * Reports a lock's queue depth through one observable gauge, read at collection time: no cost
 * per acquisition. Locks are held weakly, so a lock that is dropped stops being reported.
 */
export function watchQueueDepth(lock: QueueSource): void {
  watched.add(new WeakRef(lock));
  if (gaugeRegistered) return;
  gaugeRegistered = true;
  metrics
    .getMeter('fleet.locks')
    .createObservableGauge('lock_queue_depth', { description: 'requests waiting, by lock' })
    .addCallback((result) => {
      for (const ref of watched) {
        const source = ref.deref();
        if (source === undefined) watched.delete(ref);
        else result.observe(source.queueLength(), { lock: source.name });
      }
    });
}

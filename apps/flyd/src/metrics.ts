import { metrics } from '@opentelemetry/api';

/**
 * Every instrument flyd exports (names, descriptions and attributes live here only). Each group
 * is made on first use, not at import: a meter taken before the service registers its provider
 * would count into nothing.
 */
const meter = () => metrics.getMeter('fleet.flyd');

function once<T>(make: () => T): () => T {
  let made: T | undefined;
  return () => {
    made ??= make();
    return made;
  };
}

/** The FSM engine's runs and steps. */
export const fsmMetrics = once(() => ({
  runs: meter().createCounter('flyd_fsm_runs', {
    description: 'finished FSM runs by action and outcome',
  }),
  runMs: meter().createHistogram('flyd_fsm_run_ms', {
    description:
      'FSM run duration from start (or leaving its queue) to its end, by action and outcome',
    unit: 'ms',
  }),
  stepMs: meter().createHistogram('flyd_fsm_step_ms', {
    description: 'FSM step duration by action and step',
    unit: 'ms',
  }),
  retries: meter().createCounter('flyd_fsm_step_retries', {
    description: 'failed step attempts that were retried, by action and step',
  }),
  refused: meter().createCounter('flyd_fsm_runs_refused', {
    description: 'runs refused because the machine was busy (reason conflict) or its queue full',
  }),
}));

/** Machine output lines that did not reach a reader whole. */
export interface LogMetrics {
  /**
   * `reason`: `stalled` or `disconnected` (the log sink), `slow_follower` (a logs stream whose
   * reader fell behind).
   */
  dropped: {
    add(count: number, attributes: { reason: 'stalled' | 'disconnected' | 'slow_follower' }): void;
  };
  /** Lines cut at the line bound (8 KiB). */
  truncated: { add(count: number): void };
  /** Times a stalled log sink held a machine's output back past the write timeout, by stream. */
  sinkTimeouts: { add(count: number, attributes: { stream: 'stdout' | 'stderr' }): void };
}

export const logMetrics = once(
  (): LogMetrics => ({
    dropped: meter().createCounter('flyd_log_lines_dropped', {
      description:
        'machine output lines not delivered: to the log sink (`stalled`, `disconnected`) or to a logs stream whose reader fell behind (`slow_follower`)',
    }),
    truncated: meter().createCounter('flyd_log_lines_truncated', {
      description: 'machine output lines cut at the line bound (8 KiB)',
    }),
    sinkTimeouts: meter().createCounter('flyd_log_sink_timeouts', {
      description:
        'times a machine output was held back by a stalled log sink past the write timeout',
    }),
  }),
);

/** The image cache. */
export interface ImageMetrics {
  /** Images downloaded from flaps (a cache miss); a machine served from the cache adds nothing. */
  pulls: { add(count: number): void };
  /** Cached images removed to keep the cache under --image-cache-bytes-max. */
  evictions: { add(count: number): void };
}

export const imageMetrics = once(
  (): ImageMetrics => ({
    pulls: meter().createCounter('flyd_image_pulls', {
      description: 'images downloaded from flaps into the cache (each first use on this worker)',
    }),
    evictions: meter().createCounter('flyd_image_evictions', {
      description: 'cached images removed, least recently used first, to stay under the bound',
    }),
  }),
);

/** What this worker holds, read at each collection. */
export function observeInventory(counts: { machines(): number; volumes(): number }): void {
  meter()
    .createObservableGauge('flyd_machines', {
      description: 'machines on this worker (not destroyed)',
    })
    .addCallback((result) => result.observe(counts.machines()));
  meter()
    .createObservableGauge('flyd_volumes', {
      description: 'volumes on this worker (not destroyed)',
    })
    .addCallback((result) => result.observe(counts.volumes()));
}

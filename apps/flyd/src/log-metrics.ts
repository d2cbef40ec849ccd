import { metrics } from '@opentelemetry/api';

/**
 * The counters of machine output lines that did not reach a reader whole. Made on first use, not
 * at import: a meter taken before the service registers its provider would count into nothing.
 */
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
}

let made: LogMetrics | undefined;

export function logMetrics(): LogMetrics {
  if (made) return made;
  const meter = metrics.getMeter('fleet.flyd');
  made = {
    dropped: meter.createCounter('flyd_log_lines_dropped', {
      description:
        'machine output lines not delivered: to the log sink (`stalled`, `disconnected`) or to a logs stream whose reader fell behind (`slow_follower`)',
    }),
    truncated: meter.createCounter('flyd_log_lines_truncated', {
      description: 'machine output lines cut at the line bound (8 KiB)',
    }),
  };
  return made;
}

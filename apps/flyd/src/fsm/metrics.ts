import { metrics } from '@opentelemetry/api';

/** Instruments of the FSM engine. */
export function fsmMetrics() {
  const meter = metrics.getMeter('fleet.flyd');
  return {
    runs: meter.createCounter('flyd_fsm_runs', {
      description: 'finished FSM runs by action and outcome',
    }),
    stepMs: meter.createHistogram('flyd_fsm_step_ms', {
      description: 'FSM step duration by action and step',
      unit: 'ms',
    }),
  };
}

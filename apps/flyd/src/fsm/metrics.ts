import { metrics } from '@opentelemetry/api';

/** Instruments of the FSM engine (all of them: names and attributes live here only). */
export function fsmMetrics() {
  const meter = metrics.getMeter('fleet.flyd');
  return {
    runs: meter.createCounter('flyd_fsm_runs', {
      description: 'finished FSM runs by action and outcome',
    }),
    runMs: meter.createHistogram('flyd_fsm_run_ms', {
      description:
        'FSM run duration from start (or leaving its queue) to its end, by action and outcome',
      unit: 'ms',
    }),
    stepMs: meter.createHistogram('flyd_fsm_step_ms', {
      description: 'FSM step duration by action and step',
      unit: 'ms',
    }),
    retries: meter.createCounter('flyd_fsm_step_retries', {
      description: 'failed step attempts that were retried, by action and step',
    }),
    refused: meter.createCounter('flyd_fsm_runs_refused', {
      description: 'runs refused because the machine was busy (reason conflict) or its queue full',
    }),
  };
}

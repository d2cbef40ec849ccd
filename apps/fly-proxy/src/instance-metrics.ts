import { metrics } from '@opentelemetry/api';

/** Which state this instance is in, for operators' dashboards (issue 13, seed 004). */
export function registerInstanceMetrics(draining: () => boolean, strictSecond: boolean): void {
  const meter = metrics.getMeter('fleet.fly-proxy');
  meter
    .createObservableGauge('proxy_draining', {
      description: '1 while this proxy drains (stopped accepting, finishing connections), else 0',
    })
    .addCallback((result) => result.observe(draining() ? 1 : 0));
  meter
    .createObservableGauge('proxy_strict_second_instance', {
      description:
        '1 when this proxy runs beside the active one in strict mode (--strict-second-instance), else 0',
    })
    .addCallback((result) => result.observe(strictSecond ? 1 : 0));
}

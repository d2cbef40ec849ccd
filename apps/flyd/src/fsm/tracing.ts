import { type Context, context, type Span, SpanStatusCode, trace } from '@opentelemetry/api';

// One tracer for the engine: a span per run (`fsm.run <action>`) and a child span per step
// attempt (`fsm.step <step>`). Without a registered tracer provider these are no-ops.
const tracer = trace.getTracer('fleet.flyd.fsm');

export interface RunSpanAttributes {
  runId: string;
  machineId: string;
  action: string;
  parentSpan?: Span;
  resumed: boolean;
}

export function startRunSpan(run: RunSpanAttributes): { span: Span; context: Context } {
  const parent = run.parentSpan ? trace.setSpan(context.active(), run.parentSpan) : undefined;
  const span = tracer.startSpan(
    `fsm.run ${run.action}`,
    {
      attributes: {
        'fsm.run_id': run.runId,
        'fsm.action': run.action,
        'fly.machine_id': run.machineId,
        'fsm.resumed': run.resumed,
      },
    },
    parent,
  );
  return { span, context: trace.setSpan(context.active(), span) };
}

export function startStepSpan(parent: Context, step: string, attempt: number): Span {
  return tracer.startSpan(
    `fsm.step ${step}`,
    { attributes: { 'fsm.step': step, 'fsm.attempt': attempt } },
    parent,
  );
}

/** Ends a span as a success, or as an error recording the exception. */
export function endSpan(span: Span, error?: Error, status?: string): void {
  if (status) span.setAttribute('fsm.status', status);
  if (error) {
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  } else {
    span.setStatus({ code: SpanStatusCode.OK });
  }
  span.end();
}

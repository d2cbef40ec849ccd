import type { Logger } from '@fleet/service';
import { backoffMs } from '@fleet/service';
import { invariant, present } from '@fleet/service/invariant';
import type { Context, Span } from '@opentelemetry/api';
import type { Database as Db } from 'better-sqlite3';
import { monotonicFactory } from 'ulid';
import { fsmMetrics } from '../metrics.js';
import { crashHook } from './crash-hook.js';
import {
  QueueFullError,
  RunConflictError,
  type RunStatus,
  StepFailure,
  statusOf,
} from './errors.js';
import { type RunHistory, type RunInfo, RunStore } from './store.js';
import { endSpan, startRunSpan, startStepSpan } from './tracing.js';
import type {
  ActionDefinition,
  ChildOptions,
  EngineOptions,
  RetryPolicy,
  RunHandle,
  RunOutcome,
  StartOptions,
  Step,
  StepContext,
} from './types.js';

export { AbortStep, QueueFullError, RunConflictError, UnrecoverableError } from './errors.js';
export type { RunHistory, RunInfo } from './store.js';
export type * from './types.js';

export const defaultRetry: RetryPolicy = { retriesMax: 3, delayMs: 100, delayMsMax: 5_000 };
const defaultOptions: EngineOptions = {
  retry: defaultRetry,
  queueLengthMax: 8,
  queues: {},
  historyMax: 100,
};
/** Run ids sort in start order, also within one millisecond: queues run in id order. */
const ulid = monotonicFactory();
/** setTimeout's longest delay; a later start re-arms its timer. */
const timerMsMax = 2 ** 31 - 1;

/** A run this engine holds in memory: waiting (`pending`) or executing. */
interface LiveRun {
  id: string;
  machineId: string;
  action: string;
  parentId: string | null;
  resumed: boolean;
  context: StepContext<unknown>;
  completed: Set<string>;
  waiters: Map<string, (() => void)[]>;
  done: Promise<Record<string, unknown>>;
  settle: { resolve(results: Record<string, unknown>): void; reject(error: Error): void };
  failure?: Error;
  span?: Span;
  spanContext?: Context;
}

/**
 * Durable finite-state machines for machine operations (after superfly/fsm): a run is keyed by
 * machine and action with a ULID id; its request is persisted when it starts and each step's
 * result when the step completes, one SQLite transaction per step. At boot, `resumeAll`
 * continues every unfinished run after its last completed step, re-arms delayed and queued runs
 * and calls the finalizers a crash skipped. One run executes per machine at a time (its children
 * excepted); others fail with RunConflictError or wait in a bounded named queue.
 */
export class FsmEngine {
  readonly #actions = new Map<string, ActionDefinition<unknown>>();
  readonly #live = new Map<string, LiveRun>();
  /** Executing runs by machine: a run and the children it started on the same machine. */
  readonly #holders = new Map<string, Set<string>>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #metrics = fsmMetrics();
  readonly #store: RunStore;
  readonly #options: EngineOptions;
  readonly #crashAfterStep = crashHook();
  readonly #crashBeforeCommit = crashHook(process.env.FLYD_CRASH_BEFORE_COMMIT);

  constructor(
    db: Db,
    private readonly logger: Logger,
    options: Partial<EngineOptions> = {},
  ) {
    this.#store = new RunStore(db);
    this.#options = { ...defaultOptions, ...options };
  }

  define<Request>(action: string, definition: ActionDefinition<Request>): void {
    this.#actions.set(action, definition as ActionDefinition<unknown>);
  }

  /**
   * Starts a run, or records it as waiting (a queue, a delay, another run to finish first).
   * Throws RunConflictError if the machine is busy and no queue was asked for, QueueFullError if
   * the queue is full.
   */
  start<Request>(
    machineId: string,
    action: string,
    request: Request,
    options: StartOptions = {},
  ): RunHandle {
    return this.#begin(machineId, action, request, options, null, null);
  }

  /** Continues every run a previous flyd left unfinished; returns their handles. */
  resumeAll(): RunHandle[] {
    for (const run of this.#store.unfinalized()) {
      const definition = this.#actions.get(run.action);
      if (!definition) continue;
      // flyd died between the run's end and its finalizer's: call the finalizer now.
      const live = this.#liveRun(run, JSON.parse(run.request), true, false);
      const outcome: RunOutcome = {
        status: run.status as RunOutcome['status'],
        error: run.status === 'succeeded' ? undefined : new Error(run.error ?? run.status),
        step: run.current_step,
      };
      void this.#finalize(definition, live, outcome);
    }
    const lives: LiveRun[] = [];
    for (const run of this.#store.withStatus('running', 'pending')) {
      if (!this.#actions.has(run.action)) {
        this.#store.update(run.id, {
          status: 'unrecoverable',
          error: `no FSM action ${run.action}`,
        });
        continue;
      }
      const live = this.#liveRun(run, JSON.parse(run.request), true);
      Object.assign(live.context.results, this.#store.results(run.id));
      for (const step of Object.keys(live.context.results)) live.completed.add(step);
      lives.push(live);
    }
    for (const live of lives) {
      const run = present(this.#store.get(live.id), `run ${live.id}, just resumed`);
      this.logger.info(
        { run: live.id, machine: live.machineId, action: live.action, status: run.status },
        'resuming run',
      );
      if (run.status === 'running') this.#execute(live);
      else if (run.start_at) this.#armTimer(live.id, Date.parse(run.start_at));
    }
    this.#schedule();
    return lives.map((live) => this.#handle(live));
  }

  /** Runs executing or waiting, with their current step, retry count and last error. */
  active(): RunInfo[] {
    return this.#store.withStatus('running', 'pending').map(({ request: _, ...run }) => run);
  }

  /** Runs of one machine, newest first. */
  history(machineId: string, limit = 20): RunInfo[] {
    return this.#store.machineRuns(machineId, limit);
  }

  /** One run with its completed steps (times and results) and its children. */
  run(id: string): RunHistory | undefined {
    return this.#store.history(id);
  }

  isBusy(machineId: string): boolean {
    return this.#holders.has(machineId);
  }

  /** What holds a busy machine, as a conflict names it: `busy with a create operation`. */
  busyWith(machineId: string): string {
    const [holder] = this.#holders.get(machineId) ?? [];
    const action = holder === undefined ? undefined : this.#live.get(holder)?.action;
    return action === undefined
      ? 'free'
      : `busy with a${/^[aeiou]/.test(action) ? 'n' : ''} ${action} operation`;
  }

  /** Resolves once the machine has no active run (at once if it has none). */
  async settled(machineId: string): Promise<void> {
    for (;;) {
      const [holder] = this.#holders.get(machineId) ?? [];
      const live = holder === undefined ? undefined : this.#live.get(holder);
      if (!live) return;
      await live.done.catch(() => undefined);
    }
  }

  /** Drops the timers of delayed runs (they stay recorded and resume with the next engine). */
  close(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  #begin(
    machineId: string,
    action: string,
    request: unknown,
    options: StartOptions,
    parentId: string | null,
    childKey: string | null,
  ): RunHandle {
    invariant(this.#actions.has(action), `the FSM action ${action} is defined`);
    const startAt =
      options.startAt && options.startAt.getTime() > Date.now() ? options.startAt : undefined;
    const runAfter =
      options.runAfter && this.#live.has(options.runAfter) ? options.runAfter : undefined;
    const waits =
      startAt !== undefined || runAfter !== undefined || !this.#free(machineId, parentId);
    const queue = waits ? this.#admit(machineId, action, options.queue, startAt ?? runAfter) : null;
    const id = ulid();
    this.#store.insert({
      id,
      machineId,
      action,
      request,
      status: waits ? 'pending' : 'running',
      queue,
      runAfter: options.runAfter ?? null,
      startAt: startAt?.toISOString() ?? null,
      parentId,
      childKey,
    });
    const live = this.#liveRun(
      { id, machine_id: machineId, action, parent_id: parentId },
      request,
      false,
    );
    if (!waits) this.#execute(live);
    else if (startAt) this.#armTimer(id, startAt.getTime());
    return this.#handle(live);
  }

  /** Which queue a run that cannot start now waits in; throws when it may not wait. */
  #admit(
    machineId: string,
    action: string,
    queue: string | boolean | undefined,
    scheduled: unknown,
  ): string {
    const busyWith = () => {
      const [holder] = this.#holders.get(machineId) ?? [];
      return (holder && this.#live.get(holder)?.action) ?? action;
    };
    // A delayed or run-after run waits in its action's queue unless told otherwise.
    const name = queue === true || (!queue && scheduled !== undefined) ? action : queue || null;
    if (name === null) {
      this.#metrics.refused.add(1, { action, reason: 'conflict' });
      throw new RunConflictError(machineId, busyWith());
    }
    const lengthMax = this.#options.queues[name] ?? this.#options.queueLengthMax;
    if (this.#store.queued(machineId, name) >= lengthMax) {
      this.#metrics.refused.add(1, { action, reason: 'queue_full' });
      throw new QueueFullError(machineId, busyWith(), name, lengthMax);
    }
    return name;
  }

  /** A machine is free for a run when nothing executes on it, or its parent holds it. */
  #free(machineId: string, parentId: string | null): boolean {
    const holders = this.#holders.get(machineId);
    return !holders || (parentId !== null && holders.has(parentId));
  }

  #liveRun(
    run: Pick<RunInfo, 'id' | 'machine_id' | 'action' | 'parent_id'>,
    request: unknown,
    resumed: boolean,
    register = true,
  ): LiveRun {
    let settle!: LiveRun['settle'];
    const done = new Promise<Record<string, unknown>>((resolve, reject) => {
      settle = { resolve, reject };
    });
    done.catch(() => undefined); // callers that only wait for a step must not see an unhandled rejection
    const live: LiveRun = {
      id: run.id,
      machineId: run.machine_id,
      action: run.action,
      parentId: run.parent_id,
      resumed,
      context: {
        runId: run.id,
        machineId: run.machine_id,
        request,
        results: {},
        startChild: (machineId, action, childRequest, options) =>
          this.#startChild(run.id, machineId, action, childRequest, options),
      },
      completed: new Set(),
      waiters: new Map(),
      done,
      settle,
    };
    if (register) this.#live.set(run.id, live);
    return live;
  }

  #startChild(
    parentId: string,
    machineId: string,
    action: string,
    request: unknown,
    options: ChildOptions = {},
  ): RunHandle {
    const key = options.key ?? `${action}:${machineId}`;
    const existing = this.#store.child(parentId, key);
    if (!existing) return this.#begin(machineId, action, request, options, parentId, key);
    const live = this.#live.get(existing.id);
    if (live) return this.#handle(live);
    // The child finished before the parent's step ran again: its outcome, as it was.
    const done =
      existing.status === 'succeeded'
        ? Promise.resolve(this.#store.results(existing.id))
        : Promise.reject(new Error(existing.error ?? existing.status));
    done.catch(() => undefined);
    return {
      id: existing.id,
      machineId,
      action,
      done,
      reached: () => done.then(() => undefined),
    };
  }

  #handle(live: LiveRun): RunHandle {
    const reached = (step: string) =>
      live.completed.has(step)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const list = live.waiters.get(step) ?? [];
            list.push(resolve);
            live.waiters.set(step, list);
            live.done.then(
              () => resolve(),
              () => reject(live.failure),
            );
          });
    return {
      id: live.id,
      machineId: live.machineId,
      action: live.action,
      done: live.done,
      reached,
    };
  }

  /** Starts every waiting run whose time came, whose predecessor finished and whose machine is free. */
  #schedule(): void {
    for (const run of this.#store.withStatus('pending')) {
      const live = this.#live.get(run.id);
      if (!live) continue;
      if (run.start_at && Date.parse(run.start_at) > Date.now()) continue; // its timer calls us
      if (run.run_after && this.#live.has(run.run_after)) continue;
      if (!this.#free(run.machine_id, run.parent_id)) continue;
      this.#store.update(run.id, { status: 'running' });
      this.#execute(live);
    }
  }

  #armTimer(id: string, startAtMs: number): void {
    clearTimeout(this.#timers.get(id));
    const delayMs = Math.max(0, startAtMs - Date.now());
    const timer = setTimeout(
      () => {
        this.#timers.delete(id);
        if (Date.now() < startAtMs) this.#armTimer(id, startAtMs);
        else this.#schedule();
      },
      Math.min(delayMs, timerMsMax),
    );
    timer.unref(); // a waiting run does not keep flyd alive: it resumes with the next one
    this.#timers.set(id, timer);
  }

  #execute(live: LiveRun): void {
    const holders = this.#holders.get(live.machineId) ?? new Set<string>();
    holders.add(live.id);
    this.#holders.set(live.machineId, holders);
    const startedMs = performance.now();
    const parentSpan = live.parentId ? this.#live.get(live.parentId)?.span : undefined;
    const { span, context } = startRunSpan({
      runId: live.id,
      machineId: live.machineId,
      action: live.action,
      parentSpan,
      resumed: live.resumed,
    });
    live.span = span;
    live.spanContext = context;
    const definition = present(this.#actions.get(live.action), `action ${live.action}`);
    this.#steps(definition, live).then(
      () => this.#finish(live, definition, 'succeeded', startedMs),
      (failure: StepFailure) =>
        this.#finish(live, definition, statusOf(failure.cause), startedMs, failure),
    );
  }

  async #steps(definition: ActionDefinition<unknown>, live: LiveRun): Promise<void> {
    const { results } = live.context;
    for (const step of definition.steps) {
      if (step.name in results) continue;
      this.#store.update(live.id, { current_step: step.name });
      const startedAt = new Date().toISOString();
      const startedMs = performance.now();
      const result = await this.#attempt(step, live);
      this.#metrics.stepMs.record(performance.now() - startedMs, {
        action: live.action,
        step: step.name,
      });
      this.#crashBeforeCommit(live.action, step.name);
      this.#store.completeStep(live.id, step.name, result, startedAt);
      this.#crashAfterStep(live.action, step.name);
      results[step.name] = result;
      live.completed.add(step.name);
      for (const resolve of live.waiters.get(step.name) ?? []) resolve();
    }
  }

  /**
   * Runs a step, retrying failures with capped exponential backoff (the retry count and last
   * error are kept on the run); an AbortStep, an UnrecoverableError, or the last failed attempt
   * ends the run.
   */
  async #attempt(step: Step<unknown>, live: LiveRun): Promise<unknown> {
    const policy = step.retry === undefined ? this.#options.retry : step.retry;
    for (let attempt = 0; ; attempt++) {
      const span = startStepSpan(
        present(live.spanContext, 'the run span context'),
        step.name,
        attempt,
      );
      try {
        const result = (await step.run(live.context)) ?? null;
        endSpan(span);
        return result;
      } catch (error) {
        const reason = error instanceof Error ? error : new Error(String(error));
        endSpan(span, reason);
        const final =
          statusOf(reason) !== 'failed' || policy === false || attempt >= policy.retriesMax;
        this.#store.failedAttempt(live.id, reason.message, !final);
        const details = {
          run: live.id,
          machine: live.machineId,
          action: live.action,
          step: step.name,
          attempt,
          err: reason,
        };
        if (final) {
          this.logger.warn(details, 'step failed');
          throw new StepFailure(step.name, reason);
        }
        this.logger.info(details, 'step failed; retrying');
        this.#metrics.retries.add(1, { action: live.action, step: step.name });
        await new Promise((resolve) =>
          setTimeout(
            resolve,
            backoffMs(attempt, { baseMs: policy.delayMs, maxMs: policy.delayMsMax }),
          ),
        );
      }
    }
  }

  async #finish(
    live: LiveRun,
    definition: ActionDefinition<unknown>,
    status: Exclude<RunStatus, 'pending' | 'running'>,
    startedMs: number,
    failure?: StepFailure,
  ): Promise<void> {
    this.#store.update(live.id, { status });
    const holders = this.#holders.get(live.machineId);
    holders?.delete(live.id);
    if (holders?.size === 0) this.#holders.delete(live.machineId);
    this.#metrics.runs.add(1, { action: live.action, outcome: status });
    this.#metrics.runMs.record(performance.now() - startedMs, {
      action: live.action,
      outcome: status,
    });
    endSpan(present(live.span, 'the run span'), failure?.cause, status);
    // Finalizers run once the machine is free, so they may start other runs on it.
    const lastStep = definition.steps.at(-1)?.name ?? null;
    await this.#finalize(definition, live, {
      status,
      error: failure?.cause,
      step: failure?.step ?? lastStep,
    });
    this.#live.delete(live.id);
    if (failure) {
      live.failure = failure.cause;
      live.settle.reject(failure.cause);
    } else {
      live.settle.resolve(live.context.results);
    }
    this.#schedule();
  }

  /** Calls the action's failure callback and finalizer, then records that they ran. */
  async #finalize(
    definition: ActionDefinition<unknown>,
    live: LiveRun,
    outcome: RunOutcome,
  ): Promise<void> {
    try {
      if (outcome.error && outcome.step !== null)
        await definition.onFailure?.(live.context, outcome.error, outcome.step);
      await definition.finalizer?.(live.context, outcome);
    } catch (error) {
      // A finalizer that throws is not retried: the run is over either way.
      this.logger.warn({ run: live.id, action: live.action, err: error }, 'finalizer failed');
    }
    this.#store.markFinalized(live.id, live.machineId, this.#options.historyMax);
  }
}

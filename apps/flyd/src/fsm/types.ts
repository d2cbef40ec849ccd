import type { RunStatus } from './errors.js';

export interface RetryPolicy {
  /** Attempts after the first one. */
  retriesMax: number;
  delayMs: number;
  delayMsMax: number;
}

export interface StartOptions {
  /**
   * When the machine is busy, wait in this named queue of the machine (`true`: the action's
   * name) instead of failing with RunConflictError. Queues are bounded (QueueFullError).
   */
  queue?: string | boolean;
  /** Start only once this run finished (whatever its outcome). */
  runAfter?: string;
  /** Start no earlier than this (persisted: a restarted flyd keeps the delay). */
  startAt?: Date;
}

export interface ChildOptions extends StartOptions {
  /** Names the child within its parent, so a step that runs again finds its child again. */
  key?: string;
}

export interface RunHandle {
  id: string;
  machineId: string;
  action: string;
  /** Settles when the run finished: the step results, or the step's error. */
  done: Promise<Record<string, unknown>>;
  /** Settles once the named step completed (or rejects if the run fails first). */
  reached(step: string): Promise<void>;
}

export interface StepContext<Request> {
  runId: string;
  machineId: string;
  request: Request;
  /** Results of the steps completed so far (also after a resume), by step name. */
  results: Record<string, unknown>;
  /**
   * Starts a child run (it may act on the same machine while this run holds it); the parent's
   * history lists it with its outcome. Await `done` to wait for it, or let it go on alone. Started
   * again by a step that runs again, it returns the child the first attempt started.
   */
  startChild<ChildRequest>(
    machineId: string,
    action: string,
    request: ChildRequest,
    options?: ChildOptions,
  ): RunHandle;
}

export interface Step<Request> {
  name: string;
  /** Overrides the engine's retry policy for this step; `false` never retries it. */
  retry?: RetryPolicy | false;
  /** Must be idempotent: after a crash the step that was running runs again. */
  run(context: StepContext<Request>): unknown | Promise<unknown>;
}

/** How a run ended, as its finalizer sees it. */
export interface RunOutcome {
  status: Exclude<RunStatus, 'pending' | 'running'>;
  /** The error the run ended on (rebuilt from its message after a restart). */
  error?: Error;
  /** The step the run was in when it ended (the last step on success). */
  step: string | null;
}

export interface ActionDefinition<Request> {
  steps: Step<Request>[];
  /** Called after a step failed, with the error and the step it failed in. */
  onFailure?(context: StepContext<Request>, error: Error, step: string): void | Promise<void>;
  /**
   * Called once every run ends, whatever its outcome; durable: if flyd dies before it returned,
   * the next flyd calls it at boot.
   */
  finalizer?(context: StepContext<Request>, outcome: RunOutcome): void | Promise<void>;
}

export interface EngineOptions {
  retry: RetryPolicy;
  /** Longest queue of waiting runs per machine and queue name, unless `queues` names it. */
  queueLengthMax: number;
  queues: Record<string, number>;
  /** Finished runs kept per machine (with their steps and children); older ones are deleted. */
  historyMax: number;
}

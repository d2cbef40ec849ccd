import type { Logger } from '@fleet/service';
import type { Database as Db } from 'better-sqlite3';
import { ulid } from 'ulid';
import { fsmMetrics } from './metrics.js';

export interface StepContext<Request> {
  runId: string;
  machineId: string;
  request: Request;
  /** Results of the steps completed so far (also after a resume), by step name. */
  results: Record<string, unknown>;
}

export interface RetryPolicy {
  /** Attempts after the first one. */
  retriesMax: number;
  delayMs: number;
  delayMsMax: number;
}

/** A step error that retrying cannot fix (a bad request, a missing image): the run stops at once. */
export class AbortStep extends Error {
  override readonly name = 'AbortStep';
}

export interface Step<Request> {
  name: string;
  /** Overrides the engine's retry policy for this step; `false` never retries it. */
  retry?: RetryPolicy | false;
  /** Must be idempotent: after a crash the step that was running runs again. */
  run(context: StepContext<Request>): unknown | Promise<unknown>;
}

export interface ActionDefinition<Request> {
  steps: Step<Request>[];
  /** Called after a step failed, with the error and the step it failed in. */
  onFailure?(context: StepContext<Request>, error: Error, step: string): void | Promise<void>;
}

/** Another run is active on the machine: one run per machine at a time. */
export class RunConflictError extends Error {
  constructor(
    readonly machineId: string,
    readonly activeAction: string,
  ) {
    super(`machine ${machineId} is busy with a ${activeAction} operation`);
  }
}

/** Which step a run failed in, and why. */
class StepFailure {
  constructor(
    readonly step: string,
    readonly cause: Error,
  ) {}
}

export interface RunHandle {
  id: string;
  action: string;
  /** Settles when the run finished: the step results, or the step's error. */
  done: Promise<Record<string, unknown>>;
  /** Settles once the named step completed (or rejects if the run fails first). */
  reached(step: string): Promise<void>;
}

export const defaultRetry: RetryPolicy = { retriesMax: 3, delayMs: 100, delayMsMax: 5_000 };

export interface RunInfo {
  id: string;
  machine_id: string;
  action: string;
  status: 'running' | 'succeeded' | 'failed' | 'aborted';
  retries: number;
  current_step: string | null;
  error: string | null;
  created_at: string;
  updated_at: string;
}

interface ActiveRun {
  action: string;
  completed: Set<string>;
  waiters: Map<string, (() => void)[]>;
  /** Settles when the run is over (whatever its outcome). */
  over?: Promise<unknown>;
}

/**
 * Durable finite-state machines for machine operations (after superfly/fsm): a run is keyed by
 * machine and action with a ULID id; its request is persisted when it starts and each step's
 * result when the step completes, one SQLite transaction per step. At boot, `resumeAll` continues
 * every unfinished run after its last completed step. One run per machine at a time.
 */
export class FsmEngine {
  readonly #actions = new Map<string, ActionDefinition<unknown>>();
  readonly #active = new Map<string, ActiveRun>();
  readonly #metrics = fsmMetrics();

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly retry: RetryPolicy = defaultRetry,
  ) {}

  define<Request>(action: string, definition: ActionDefinition<Request>): void {
    this.#actions.set(action, definition as ActionDefinition<unknown>);
  }

  /** Starts a run; throws RunConflictError if the machine already has an active run. */
  start<Request>(machineId: string, action: string, request: Request): RunHandle {
    const busy = this.#active.get(machineId);
    if (busy) throw new RunConflictError(machineId, busy.action);
    if (!this.#actions.has(action)) throw new Error(`no FSM action ${action}`);
    const id = ulid();
    const now = new Date().toISOString();
    this.db
      .prepare(
        "INSERT INTO fsm_runs (id, machine_id, action, request, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'running', ?, ?)",
      )
      .run(id, machineId, action, JSON.stringify(request ?? null), now, now);
    return this.#execute({ id, machineId, action, request, results: {} });
  }

  /** Continues every run a previous flyd left unfinished; returns their handles. */
  resumeAll(): RunHandle[] {
    const runs = this.db
      .prepare(
        "SELECT id, machine_id, action, request FROM fsm_runs WHERE status = 'running' ORDER BY id",
      )
      .all() as {
      id: string;
      machine_id: string;
      action: string;
      request: string;
    }[];
    return runs.map((run) => {
      const steps = this.db
        .prepare('SELECT step, result FROM fsm_steps WHERE run_id = ?')
        .all(run.id) as { step: string; result: string }[];
      const results = Object.fromEntries(steps.map((step) => [step.step, JSON.parse(step.result)]));
      this.logger.info(
        {
          run: run.id,
          machine: run.machine_id,
          action: run.action,
          completed: Object.keys(results),
        },
        'resuming run',
      );
      return this.#execute({
        id: run.id,
        machineId: run.machine_id,
        action: run.action,
        request: JSON.parse(run.request),
        results,
      });
    });
  }

  /** Runs in progress, with their current step. */
  active(): RunInfo[] {
    return this.db
      .prepare("SELECT * FROM fsm_runs WHERE status = 'running' ORDER BY id")
      .all() as RunInfo[];
  }

  /** Runs of one machine, newest first. */
  history(machineId: string, limit = 20): RunInfo[] {
    return this.db
      .prepare('SELECT * FROM fsm_runs WHERE machine_id = ? ORDER BY id DESC LIMIT ?')
      .all(machineId, limit) as RunInfo[];
  }

  isBusy(machineId: string): boolean {
    return this.#active.has(machineId);
  }

  /** Resolves once the machine has no active run (at once if it has none). */
  async settled(machineId: string): Promise<void> {
    for (let active = this.#active.get(machineId); active; active = this.#active.get(machineId)) {
      await active.over;
    }
  }

  #execute(run: {
    id: string;
    machineId: string;
    action: string;
    request: unknown;
    results: Record<string, unknown>;
  }): RunHandle {
    const active: ActiveRun = {
      action: run.action,
      completed: new Set(Object.keys(run.results)),
      waiters: new Map(),
    };
    this.#active.set(run.machineId, active);
    let failure: Error | undefined;
    const definition = this.#actions.get(run.action)!;
    const context: StepContext<unknown> = {
      runId: run.id,
      machineId: run.machineId,
      request: run.request,
      results: run.results,
    };
    const done = this.#steps(definition, context, active).then(
      (results) => {
        this.#finish(run, active, 'succeeded');
        return results;
      },
      async (stepFailure: StepFailure) => {
        failure = stepFailure.cause;
        this.#finish(run, active, stepFailure.cause instanceof AbortStep ? 'aborted' : 'failed');
        // Finalizers run once the run is over, so they may start other runs on the machine.
        await definition.onFailure?.(context, stepFailure.cause, stepFailure.step);
        throw stepFailure.cause;
      },
    );
    done.catch(() => undefined); // callers that only wait for a step must not see an unhandled rejection
    active.over = done.catch(() => undefined);
    const reached = (step: string) =>
      active.completed.has(step)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const list = active.waiters.get(step) ?? [];
            list.push(resolve);
            active.waiters.set(step, list);
            done.then(
              () => resolve(),
              () => reject(failure),
            );
          });
    return { id: run.id, action: run.action, done, reached };
  }

  async #steps(
    definition: ActionDefinition<unknown>,
    context: StepContext<unknown>,
    active: ActiveRun,
  ): Promise<Record<string, unknown>> {
    const run = {
      id: context.runId,
      machineId: context.machineId,
      action: active.action,
      results: context.results,
    };
    for (const step of definition.steps) {
      if (step.name in run.results) continue;
      this.db
        .prepare('UPDATE fsm_runs SET current_step = ?, updated_at = ? WHERE id = ?')
        .run(step.name, new Date().toISOString(), run.id);
      const started = performance.now();
      const result = await this.#attempt(step, context, run);
      this.#metrics.stepMs.record(performance.now() - started, {
        action: run.action,
        step: step.name,
      });
      this.db.transaction(() => {
        this.db
          .prepare(
            'INSERT OR REPLACE INTO fsm_steps (run_id, step, result, completed_at) VALUES (?, ?, ?, ?)',
          )
          .run(run.id, step.name, JSON.stringify(result), new Date().toISOString());
      })();
      run.results[step.name] = result;
      active.completed.add(step.name);
      for (const resolve of active.waiters.get(step.name) ?? []) resolve();
    }
    return run.results;
  }

  /**
   * Runs a step, retrying failures with capped exponential backoff (the retry count and last
   * error are kept on the run); an AbortStep, or the last failed attempt, fails the run.
   */
  async #attempt(
    step: Step<unknown>,
    context: StepContext<unknown>,
    run: { id: string; machineId: string; action: string },
  ): Promise<unknown> {
    const policy = step.retry === undefined ? this.retry : step.retry;
    for (let attempt = 0; ; attempt++) {
      try {
        return (await step.run(context)) ?? null;
      } catch (error) {
        const reason = error as Error;
        const final =
          reason instanceof AbortStep || policy === false || attempt >= policy.retriesMax;
        this.db
          .prepare(
            'UPDATE fsm_runs SET error = ?, retries = retries + ?, updated_at = ? WHERE id = ?',
          )
          .run(reason.message, final ? 0 : 1, new Date().toISOString(), run.id);
        const details = {
          run: run.id,
          machine: run.machineId,
          action: run.action,
          step: step.name,
          attempt,
          err: reason,
        };
        if (final) {
          this.logger.warn(details, 'step failed');
          throw new StepFailure(step.name, reason);
        }
        this.logger.info(details, 'step failed; retrying');
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(policy.delayMs * 2 ** attempt, policy.delayMsMax)),
        );
      }
    }
  }

  #finish(
    run: { id: string; machineId: string; action: string },
    active: ActiveRun,
    status: 'succeeded' | 'failed' | 'aborted',
  ): void {
    this.db
      .prepare('UPDATE fsm_runs SET status = ?, updated_at = ? WHERE id = ?')
      .run(status, new Date().toISOString(), run.id);
    if (this.#active.get(run.machineId) === active) this.#active.delete(run.machineId);
    this.#metrics.runs.add(1, { action: run.action, outcome: status });
  }
}

import type { FlydErrorCode } from '../errors.js';

/**
 * The engine's error kinds. A step's error decides what the engine does next:
 * - any other error is retryable: the step runs again with backoff, then the run ends `failed`;
 * - `AbortStep`: the request cannot succeed (a bad config, a missing image); the run ends
 *   `aborted` at once, as the caller's fault;
 * - `UnrecoverableError`: this host cannot finish the run (its data is gone, an invariant broke);
 *   the run ends `unrecoverable` at once, for an operator to look at.
 */
export class AbortStep extends Error {
  override readonly name = 'AbortStep';
}

/** Its code (flyd's registry, src/errors.ts) is what the API answers a run that ends so. */
export class UnrecoverableError extends Error {
  override readonly name = 'UnrecoverableError';
  readonly code: FlydErrorCode = 'FLYD_ERR_UNRECOVERABLE';
}

/** Another run is active on the machine: one run per machine at a time. */
export class RunConflictError extends Error {
  override readonly name: string = 'RunConflictError';
  readonly code: FlydErrorCode = 'FLYD_ERR_CONFLICT';

  constructor(
    readonly machineId: string,
    readonly activeAction: string,
    message = `machine ${machineId} is busy with a ${activeAction} operation`,
  ) {
    super(message);
  }
}

/** The machine's named queue already holds its maximum of waiting runs. */
export class QueueFullError extends RunConflictError {
  override readonly name = 'QueueFullError';
  override readonly code: FlydErrorCode = 'FLYD_ERR_QUEUE_FULL';

  constructor(
    machineId: string,
    activeAction: string,
    readonly queue: string,
    readonly lengthMax: number,
  ) {
    super(
      machineId,
      activeAction,
      `machine ${machineId} is busy with a ${activeAction} operation and its ${queue} queue is full (${lengthMax} waiting)`,
    );
  }
}

/** Which step a run ended in, and why. */
export class StepFailure {
  constructor(
    readonly step: string,
    readonly cause: Error,
  ) {}
}

export type RunStatus =
  | 'pending'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'aborted'
  | 'unrecoverable';

/** The terminal status a step's final error gives its run. */
export function statusOf(error: Error): Exclude<RunStatus, 'pending' | 'running' | 'succeeded'> {
  if (error instanceof AbortStep) return 'aborted';
  if (error instanceof UnrecoverableError) return 'unrecoverable';
  return 'failed';
}

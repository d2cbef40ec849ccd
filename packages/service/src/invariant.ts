import type { ServiceErrorCode } from './error-codes.js';

/**
 * A broken invariant: a state the code's own logic rules out (a map entry its caller just put
 * there, a lock held by the function that releases it). Reaching one is a bug in Fleet, never
 * bad input, so it is thrown, not answered: callers do not catch it, and its code says which kind
 * of failure it is in logs.
 */
export class InvariantError extends Error {
  readonly code = 'FLEET_ERR_INVARIANT' satisfies ServiceErrorCode;

  constructor(message: string) {
    super(`invariant broken: ${message}`);
    this.name = 'InvariantError';
  }
}

/** Narrows `condition` to true, or throws an InvariantError with `message`. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}

/**
 * `value`, which the caller's logic guarantees is there (what `value!` would claim unchecked), or
 * an InvariantError naming `what` is missing.
 */
export function present<T>(value: T, what: string): NonNullable<T> {
  if (value === undefined || value === null) throw new InvariantError(`${what} is missing`);
  return value as NonNullable<T>;
}

/** Error codes of @fleet/locks; the README lists the same table. */
export const LockErrorCodes = {
  LOCK_ERR_TIMEOUT: 'the lock was not granted within the timeout',
  LOCK_ERR_CANCELLED: 'the wait was cancelled through its AbortSignal',
  LOCK_ERR_QUEUE_FULL: 'maxWaiters requests are already queued',
  LOCK_ERR_REENTRANT: 'the flow already holds this lock: waiting would deadlock',
  LOCK_ERR_BAD_OPTION: 'an option or argument is invalid; the message names it and what is allowed',
  LOCK_ERR_WOULD_BLOCK:
    'a blocking acquisition of a SharedRwLock on the main thread, which must not block',
} as const;

export type LockErrorCode = keyof typeof LockErrorCodes;

export class LockError extends Error {
  constructor(
    readonly code: LockErrorCode,
    message: string,
    readonly lock: string,
    readonly label: string,
  ) {
    super(message);
    this.name = 'LockError';
  }
}

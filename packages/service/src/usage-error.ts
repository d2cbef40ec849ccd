import type { ServiceErrorCode } from './error-codes.js';

/** A bad flag, value or config file: the caller prints the message and exits with status 2. */
export class UsageError extends Error {
  readonly code = 'USAGE_ERR' satisfies ServiceErrorCode;
}

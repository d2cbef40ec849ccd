import type { TlsErrorCode } from '../errors.js';

/** An operating failure of TLS termination; `code` is one of `TlsErrors` (src/errors.ts). */
export class TlsError extends Error {
  constructor(
    readonly code: TlsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TlsError';
  }
}

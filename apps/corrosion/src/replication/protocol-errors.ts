import type { Logger } from '@fleet/service';
import { ProtocolError, type ProtocolErrorCode } from '../errors.js';

/**
 * Peers' breaches of the replication protocols (ProtocolError), counted by code and logged with
 * it, for `/v1/status` and the metrics. What is not a breach is left to the caller: a failed
 * sync's reset connection is routine (debug), a datagram handler's other failure is a bug (warn).
 */
export class ProtocolErrorTally {
  readonly #counts: Partial<Record<ProtocolErrorCode, number>> = {};

  constructor(private readonly logger: Logger) {}

  /** Counts and logs `error` if it is a breach; false (nothing done) if it is anything else. */
  breach(error: unknown, what: string, peer: string | undefined): boolean {
    if (!(error instanceof ProtocolError)) return false;
    this.#counts[error.code] = (this.#counts[error.code] ?? 0) + 1;
    this.logger.warn({ code: error.code, peer, reason: error.message }, what);
    return true;
  }

  /** Breaches so far, by code (codes never seen are absent). */
  counts(): Partial<Record<ProtocolErrorCode, number>> {
    return { ...this.#counts };
  }
}

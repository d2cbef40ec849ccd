import type { Logger } from '@fleet/service';
import { ProtocolError, type ProtocolErrorCode } from '../errors.js';

/**
 * Where a failed sync or a dropped gossip datagram ends: a peer's breach of the protocol
 * (ProtocolError) is counted by its code and logged with it; anything else (a reset connection,
 * a peer gone) is only logged, at debug, as before.
 */
export class ProtocolErrorTally {
  readonly #counts: Partial<Record<ProtocolErrorCode, number>> = {};

  constructor(private readonly logger: Logger) {}

  record(error: unknown, what: string, peer?: string): void {
    if (!(error instanceof ProtocolError)) {
      this.logger.debug({ err: error, peer }, what);
      return;
    }
    this.#counts[error.code] = (this.#counts[error.code] ?? 0) + 1;
    this.logger.warn({ code: error.code, peer, reason: error.message }, what);
  }

  /** Breaches so far, by code (codes never seen are absent). */
  counts(): Partial<Record<ProtocolErrorCode, number>> {
    return { ...this.#counts };
  }
}

/**
 * A token bucket of bytes: `rateBytesPerSecond` refill, at most `burstBytes` saved. Bytes are
 * taken as they move, so the tokens go negative (a debt) when a chunk is larger than what is
 * left: the flow then waits until time has repaid it.
 */
export class TokenBucket {
  tokens: number;
  #refilledMs: number;

  constructor(
    public rateBytesPerSecond: number,
    public burstBytes: number,
    nowMs: number,
  ) {
    this.tokens = burstBytes;
    this.#refilledMs = nowMs;
  }

  /** Changes the rate and burst from now on; saved tokens above the new burst are dropped. */
  reshape(rateBytesPerSecond: number, burstBytes: number, nowMs: number): void {
    this.refill(nowMs);
    this.rateBytesPerSecond = rateBytesPerSecond;
    this.burstBytes = burstBytes;
    this.tokens = Math.min(this.tokens, burstBytes);
  }

  refill(nowMs: number): void {
    const elapsedMs = Math.max(0, nowMs - this.#refilledMs);
    this.#refilledMs = nowMs;
    this.tokens = Math.min(
      this.burstBytes,
      this.tokens + (elapsedMs * this.rateBytesPerSecond) / 1000,
    );
  }

  /** Takes `bytes`; answers how long (ms) the flow must wait for the debt to be repaid (0: none). */
  take(bytes: number, nowMs: number): number {
    this.refill(nowMs);
    this.tokens -= bytes;
    return this.waitMs();
  }

  /** Time until the tokens are back at zero, from the last refill. */
  waitMs(): number {
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rateBytesPerSecond);
  }
}

import { present } from '@fleet/service/invariant';

/**
 * The last `size` apply lags (commit on the origin to merge here), for the p99 that
 * `/v1/health` reports as Corrosion does. A fixed ring: recording is O(1) and memory bounded;
 * the quantile sorts a copy only when asked.
 */
export class LagWindow {
  readonly #lags: Float64Array;
  #next = 0;
  #count = 0;

  constructor(readonly size = 1024) {
    this.#lags = new Float64Array(size);
  }

  record(lagMs: number): void {
    this.#lags[this.#next] = Math.max(0, lagMs);
    this.#next = (this.#next + 1) % this.size;
    this.#count = Math.min(this.#count + 1, this.size);
  }

  /** The q-quantile (nearest rank) of the recorded lags in milliseconds; 0 before any. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const sorted = this.#lags.slice(0, this.#count).sort();
    const rank = Math.max(0, Math.min(this.#count - 1, Math.ceil(q * this.#count) - 1));
    return present(sorted[rank], 'a recorded lag at the rank');
  }
}

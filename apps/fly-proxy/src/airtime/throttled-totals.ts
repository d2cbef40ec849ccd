/** Apps with a series of their own in the throttled-time and -bytes counters. */
export const throttledAppsNamedMax = 20;

/**
 * Throttled time and bytes per app for the metrics, with bounded cardinality: the first
 * `throttledAppsNamedMax` apps ever throttled keep a series of their own for the process's life
 * (so each series only grows, as a counter must); every later app adds to `app="other"`.
 */
export class ThrottledTotals {
  readonly #named = new Map<string, { ms: number; bytes: number }>();
  readonly #other = { ms: 0, bytes: 0 };

  add(app: string, ms: number, bytes: number): void {
    if (ms === 0 && bytes === 0) return;
    let totals = this.#named.get(app);
    if (totals === undefined && this.#named.size < throttledAppsNamedMax) {
      totals = { ms: 0, bytes: 0 };
      this.#named.set(app, totals);
    }
    const into = totals ?? this.#other;
    into.ms += ms;
    into.bytes += bytes;
  }

  /** Each series: app (or `other`) with its totals. */
  *series(): Generator<[string, { ms: number; bytes: number }]> {
    yield* this.#named;
    if (this.#other.ms > 0 || this.#other.bytes > 0) yield ['other', this.#other];
  }
}

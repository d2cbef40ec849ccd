import type { LockMode } from './core.js';

/**
 * The lock's own figures, kept in plain numbers at module level and handed to OpenTelemetry only
 * at collection time (metrics.ts). Recording one wait or hold is a few additions, where one SDK
 * histogram sample with attributes costs about a microsecond: the lock pays for its metrics in
 * nanoseconds and a scrape pays for the export.
 *
 * Figures are kept per lock name, not per lock object, so a lock made per request adds to its
 * name's figures instead of making a series of its own.
 */

/** Upper bounds of the buckets, in ms: 1 µs to 10 s, then +Inf. */
export const bucketBoundsMs: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500,
  1_000, 2_500, 5_000, 10_000,
]);

/** Distinct lock names kept; later names share the figures of `overflowName`. */
export const namesMax = 1_000;
/** Distinct labels kept per lock name and mode; later labels share `overflowLabel`. */
export const labelsMax = 500;
export const overflowName = '(other)';
export const overflowLabel = '(other)';

/** Count, sum, max and buckets of one measured duration (waits or holds). */
export class Distribution {
  count = 0;
  sumMs = 0;
  /** The largest value since the last collection (reset by `takeMax`). */
  maxMs = 0;
  /** Per bucket, not cumulative; index `bucketBoundsMs.length` is the +Inf bucket. */
  readonly buckets = new Float64Array(bucketBoundsMs.length + 1);

  /** One more value in bucket `index`, which is always one of `buckets`. */
  #count(index: number): void {
    this.buckets[index] = (this.buckets[index] ?? 0) + 1;
  }

  record(ms: number): void {
    this.count++;
    this.sumMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
    const bound = bucketBoundsMs.findIndex((boundMs) => ms <= boundMs);
    this.#count(bound === -1 ? bucketBoundsMs.length : bound);
  }

  /** An acquisition granted at once: a wait of zero, without reading the clock. */
  recordZero(): void {
    this.count++;
    this.#count(0);
  }

  takeMax(): number {
    const max = this.maxMs;
    this.maxMs = 0;
    return max;
  }
}

/** The figures of one lock name, label and mode. */
export class Series {
  readonly wait = new Distribution();
  readonly hold = new Distribution();
  readonly attributes: Readonly<{ lock: string; label: string; mode: LockMode }>;

  constructor(
    lock: string,
    readonly label: string,
    mode: LockMode,
  ) {
    this.attributes = Object.freeze({ lock, label, mode });
  }
}

/**
 * Something in progress on a lock of a family: a hold or a wait. Families link them in the
 * order they began, so the head of each list is the oldest.
 */
export interface Tracked {
  /** performance.now() when the hold or the wait began. */
  startedMs: number;
  familyPrev: Tracked | undefined;
  familyNext: Tracked | undefined;
}

/** An intrusive doubly linked list: O(1) to add at the tail and to remove from anywhere. */
export class TrackedList {
  head: Tracked | undefined = undefined;
  tail: Tracked | undefined = undefined;
  length = 0;

  add(item: Tracked): void {
    item.familyPrev = this.tail;
    item.familyNext = undefined;
    if (this.tail === undefined) this.head = item;
    else this.tail.familyNext = item;
    this.tail = item;
    this.length++;
  }

  remove(item: Tracked): void {
    const { familyPrev, familyNext } = item;
    if (familyPrev === undefined) this.head = familyNext;
    else familyPrev.familyNext = familyNext;
    if (familyNext === undefined) this.tail = familyPrev;
    else familyNext.familyPrev = familyPrev;
    item.familyPrev = undefined;
    item.familyNext = undefined;
    this.length--;
  }
}

/** Everything kept for one lock name, whichever lock objects carry it. */
export class Family {
  readonly read = new Map<string, Series>();
  readonly write = new Map<string, Series>();
  /** Holds in progress on every lock of this name, oldest first. */
  readonly holds = new TrackedList();
  /** Requests waiting on every lock of this name, oldest first. */
  readonly waits = new TrackedList();
  readHolds = 0;
  writeHolds = 0;

  constructor(readonly name: string) {}

  series(mode: LockMode, label: string): Series {
    const byLabel = mode === 'read' ? this.read : this.write;
    let series = byLabel.get(label);
    if (series !== undefined) return series;
    const kept = byLabel.size < labelsMax ? label : overflowLabel;
    series = byLabel.get(kept) ?? new Series(this.name, kept, mode);
    byLabel.set(kept, series);
    return series;
  }
}

export const families = new Map<string, Family>();

/** The family of a lock name (made on first use). */
export function familyOf(name: string): Family {
  let family = families.get(name);
  if (family !== undefined) return family;
  const kept = families.size < namesMax ? name : overflowName;
  family = families.get(kept) ?? new Family(kept);
  families.set(kept, family);
  return family;
}

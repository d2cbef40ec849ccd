/**
 * A histogram aggregated in the process and exported only when metrics are collected. A hot path
 * (fly-proxy records one value per request) pays a bucket search and a few additions per value;
 * an OpenTelemetry Histogram's `record` hashes its attributes (sorted keys, then JSON) on every
 * call. `startMetrics` exports every histogram made here as a cumulative explicit-bucket
 * histogram, one series per value of its one label, next to the SDK's own instruments.
 */

/** OpenTelemetry's default explicit bucket boundaries (inclusive upper bounds). */
const defaultBoundaries: readonly number[] = Object.freeze([
  0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000,
]);

/** One label value's aggregate: counts per bucket (one more than the boundaries), sum, min, max. */
export interface HistogramSeries {
  readonly labelValue: string;
  readonly counts: number[];
  count: number;
  sum: number;
  min: number;
  max: number;
}

export class LocalHistogram {
  readonly #series = new Map<string, HistogramSeries>();
  /** When aggregation started (epoch ms): the start time of every cumulative point. */
  readonly startedMs = Date.now();

  constructor(
    /** The meter name it is exported under (`otel_scope_name`), as the SDK's instruments are. */
    readonly scope: string,
    readonly name: string,
    readonly description: string,
    readonly unit: string,
    readonly label: string,
    readonly boundaries: readonly number[],
  ) {}

  record(labelValue: string, value: number): void {
    let series = this.#series.get(labelValue);
    if (series === undefined) {
      series = {
        labelValue,
        counts: new Array<number>(this.boundaries.length + 1).fill(0),
        count: 0,
        sum: 0,
        min: Number.POSITIVE_INFINITY,
        max: Number.NEGATIVE_INFINITY,
      };
      this.#series.set(labelValue, series);
    }
    const boundaries = this.boundaries;
    let bucket = 0;
    while (bucket < boundaries.length && value > (boundaries[bucket] as number)) bucket += 1;
    series.counts[bucket] = (series.counts[bucket] as number) + 1;
    series.count += 1;
    series.sum += value;
    if (value < series.min) series.min = value;
    if (value > series.max) series.max = value;
  }

  series(): IterableIterator<HistogramSeries> {
    return this.#series.values();
  }
}

const histograms = new Map<string, LocalHistogram>();

/**
 * The process's histogram named `name`, made on first use: like OpenTelemetry's instruments, a
 * second call with the same name returns the same aggregate. Label values must be bounded by the
 * caller (known apps only, say): each one is a series kept for the life of the process.
 */
export function localHistogram(
  name: string,
  options: {
    scope: string;
    description: string;
    unit: string;
    label: string;
    boundaries?: readonly number[];
  },
): LocalHistogram {
  let histogram = histograms.get(name);
  if (histogram === undefined) {
    const { scope, description, unit, label, boundaries = defaultBoundaries } = options;
    histogram = new LocalHistogram(scope, name, description, unit, label, boundaries);
    histograms.set(name, histogram);
  }
  return histogram;
}

/** Every histogram of the process, for the exporter. */
export function localHistograms(): IterableIterator<LocalHistogram> {
  return histograms.values();
}

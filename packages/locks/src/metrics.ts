import assert from 'node:assert/strict';
import {
  type Attributes,
  type BatchObservableResult,
  type Counter,
  type Meter,
  type MeterProvider,
  metrics,
  type Observable,
  type ObservableGauge,
} from '@opentelemetry/api';
import type { LockMode } from './core.js';
import { bucketBoundsMs, type Distribution, type Family, families, type Series } from './stats.js';

/**
 * Every instrument of @fleet/locks, in one place.
 *
 * Waits and holds are counted by the lock itself (stats.ts) and read here only when a reader
 * collects, through one batch observable callback; rare events are SDK counters. The meter is
 * never captured at module load: the global provider may still be the no-op one then. Each lock
 * event compares the global provider with the one the callback is registered on (one property
 * read and a comparison) and moves the registration when the SDK was installed or replaced, so
 * metrics work whichever of the SDK and the lock came first, and figures recorded before the SDK
 * was installed are exported too. A lock nobody touches after the SDK arrives (a writer stuck
 * since before) is found by a poll every `providerPollMs` (one unref'd timer per process).
 */
export const meterName = 'fleet.locks';

/** Attributes of the rare-event counters and the per-label series. */
export type SeriesAttributes = Readonly<{ lock: string; label: string; mode: LockMode }>;

interface Exported {
  meter: Meter;
  instruments: Observable[];
  waitCount: ObservableGauge;
  waitSum: ObservableGauge;
  waitBucket: ObservableGauge;
  waitMax: ObservableGauge;
  holdCount: ObservableGauge;
  holdSum: ObservableGauge;
  holdBucket: ObservableGauge;
  holdMax: ObservableGauge;
  holdsInProgress: ObservableGauge;
  oldestHold: ObservableGauge;
  queueDepth: ObservableGauge;
  oldestWait: ObservableGauge;
}

export interface RareCounters {
  timeouts: Counter;
  cancellations: Counter;
  reentries: Counter;
  queueFull: Counter;
  slowHolds: Counter;
  slowWaits: Counter;
  warningsSuppressed: Counter;
  loggerErrors: Counter;
}

/** How often the global provider is checked besides at every lock event. */
export const providerPollMs = 1_000;

let registeredWith: MeterProvider | undefined;
let poll: NodeJS.Timeout | undefined;
let exported: Exported | undefined;
let counters: RareCounters | undefined;

/**
 * Where @opentelemetry/api 1.x keeps its globals (`Symbol.for('opentelemetry.js.api.1')`, the
 * key every copy of the API shares). Reading the slot is a property read, where
 * `metrics.getMeterProvider()` also checks version compatibility each time (about 10 ns).
 */
const apiGlobalKey = Symbol.for('opentelemetry.js.api.1');
let slotSeen: unknown = {};

function currentSlot(): unknown {
  return (globalThis as { [apiGlobalKey]?: { metrics?: unknown } })[apiGlobalKey]?.metrics;
}

/**
 * Keeps the collection callback registered with the current global provider. Called on every
 * lock event: the common case is one property read and a comparison; the API proper is asked
 * only when the slot changed, and by the poll (which does not rely on the slot's layout).
 */
export function followProvider(): void {
  const slot = currentSlot();
  if (slot === slotSeen) return;
  slotSeen = slot;
  checkProvider();
}

function checkProvider(): void {
  if (metrics.getMeterProvider() !== registeredWith) moveRegistration();
}

/** Starts the poll (once per process); it never keeps the process alive. */
export function pollProvider(): void {
  followProvider();
  if (poll !== undefined) return;
  poll = setInterval(checkProvider, providerPollMs);
  poll.unref();
}

function moveRegistration(): void {
  const provider = metrics.getMeterProvider();
  registeredWith = provider;
  counters = undefined;
  try {
    if (exported !== undefined)
      exported.meter.removeBatchObservableCallback(collect, exported.instruments);
  } catch {
    // The old provider may be shut down; nothing of the lock depends on it.
  }
  exported = undefined;
  try {
    exported = createExported(provider.getMeter(meterName));
    exported.meter.addBatchObservableCallback(collect, exported.instruments);
  } catch {
    // A provider that cannot register must not break a lock: its metrics are lost, not its state.
    exported = undefined;
  }
}

function createExported(meter: Meter): Exported {
  const gauge = (name: string, description: string, unit?: string) =>
    meter.createObservableGauge(name, unit === undefined ? { description } : { description, unit });
  const figures = (what: 'wait' | 'hold', meaning: string) => ({
    count: gauge(`lock_${what}_ms_count`, `${meaning}: how many, since the process started`),
    sum: gauge(`lock_${what}_ms_sum`, `${meaning}: total ms, since the process started`, 'ms'),
    bucket: gauge(
      `lock_${what}_ms_bucket`,
      `${meaning}: how many took at most \`le\` ms (cumulative, as a Prometheus histogram)`,
    ),
    max: gauge(`lock_${what}_ms_max`, `${meaning}: the longest since the last collection`, 'ms'),
  });
  const wait = figures('wait', 'waits from request to grant');
  const hold = figures('hold', 'holds from grant to release');
  const instruments = {
    meter,
    waitCount: wait.count,
    waitSum: wait.sum,
    waitBucket: wait.bucket,
    waitMax: wait.max,
    holdCount: hold.count,
    holdSum: hold.sum,
    holdBucket: hold.bucket,
    holdMax: hold.max,
    holdsInProgress: gauge('lock_holds', 'holds in progress, by lock and mode'),
    oldestHold: gauge(
      'lock_oldest_hold_ms',
      'age of the oldest hold still in progress, by lock (0 when free)',
      'ms',
    ),
    queueDepth: gauge('lock_queue_depth', 'requests waiting, by lock'),
    oldestWait: gauge(
      'lock_oldest_wait_ms',
      'age of the oldest request still waiting, by lock (0 when none)',
      'ms',
    ),
  };
  const { meter: _meter, ...observables } = instruments;
  return { ...instruments, instruments: Object.values(observables) };
}

/** The batch callback: every figure of every lock name, read in one pass. */
function collect(result: BatchObservableResult): void {
  const target = exported;
  if (target === undefined) return;
  const now = performance.now();
  for (const family of families.values()) {
    for (const series of family.read.values()) observeSeries(result, target, series);
    for (const series of family.write.values()) observeSeries(result, target, series);
    observeFamily(result, target, family, now);
  }
}

function observeFamily(
  result: BatchObservableResult,
  target: Exported,
  family: Family,
  now: number,
): void {
  const lock = { lock: family.name };
  result.observe(target.holdsInProgress, family.readHolds, { lock: family.name, mode: 'read' });
  result.observe(target.holdsInProgress, family.writeHolds, { lock: family.name, mode: 'write' });
  const oldestHold = family.holds.head;
  result.observe(
    target.oldestHold,
    oldestHold === undefined ? 0 : now - oldestHold.startedMs,
    lock,
  );
  result.observe(target.queueDepth, family.waits.length, lock);
  const oldestWait = family.waits.head;
  result.observe(
    target.oldestWait,
    oldestWait === undefined ? 0 : now - oldestWait.startedMs,
    lock,
  );
}

const bucketAttributes = new WeakMap<Series, Attributes[]>();

function observeSeries(result: BatchObservableResult, target: Exported, series: Series): void {
  let perBucket = bucketAttributes.get(series);
  if (perBucket === undefined) {
    perBucket = [...bucketBoundsMs.map(String), '+Inf'].map((le) => ({
      ...series.attributes,
      le,
    }));
    bucketAttributes.set(series, perBucket);
  }
  observeDistribution(result, series.wait, perBucket, series.attributes, {
    count: target.waitCount,
    sum: target.waitSum,
    bucket: target.waitBucket,
    max: target.waitMax,
  });
  observeDistribution(result, series.hold, perBucket, series.attributes, {
    count: target.holdCount,
    sum: target.holdSum,
    bucket: target.holdBucket,
    max: target.holdMax,
  });
}

function observeDistribution(
  result: BatchObservableResult,
  figures: Distribution,
  perBucket: Attributes[],
  attributes: Attributes,
  into: { count: Observable; sum: Observable; bucket: Observable; max: Observable },
): void {
  result.observe(into.count, figures.count, attributes);
  result.observe(into.sum, figures.sumMs, attributes);
  result.observe(into.max, figures.takeMax(), attributes);
  let cumulative = 0;
  for (const [index, count] of figures.buckets.entries()) {
    cumulative += count;
    const bucket = perBucket[index];
    assert.ok(bucket, `bucket ${index} has its attributes`); // made per bound, plus +Inf
    result.observe(into.bucket, cumulative, bucket);
  }
}

/** The SDK counters of rare events, from the current global provider (made on first use). */
export function rareCounters(): RareCounters {
  followProvider();
  if (counters !== undefined) return counters;
  const meter = metrics.getMeter(meterName);
  const counter = (name: string, description: string) => meter.createCounter(name, { description });
  counters = {
    timeouts: counter('lock_timeouts', 'acquisitions that timed out'),
    cancellations: counter('lock_cancellations', 'waits cancelled through their AbortSignal'),
    reentries: counter('lock_reentries', 're-entrant requests refused'),
    queueFull: counter('lock_queue_full', 'requests refused: maxWaiters already waiting'),
    slowHolds: counter('lock_slow_holds', 'holds longer than holdMsMax'),
    slowWaits: counter('lock_slow_waits', 'waits longer than slowWaitMs'),
    warningsSuppressed: counter(
      'lock_warnings_suppressed',
      'warnings held back by warnIntervalMs (summarised in one line)',
    ),
    loggerErrors: counter('lock_logger_errors', 'warnings the logger threw on (ignored)'),
  };
  return counters;
}

/**
 * Adds to a rare-event counter. Whatever the SDK does (even throw) must not reach the lock:
 * callers have already brought the lock's state up to date.
 */
export function countRare(
  name: keyof RareCounters,
  attributes: SeriesAttributes | { lock: string },
): void {
  try {
    rareCounters()[name].add(1, attributes);
  } catch {
    // Metrics are best effort; the lock's state is not theirs to change.
  }
}

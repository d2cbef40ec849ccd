import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { type CoreRequest, LockCore, type LockMode } from './core.js';
import { lockChannels } from './diagnostics.js';
import { LockError } from './errors.js';
import { flowStorage } from './flow-storage.js';
import { countRare, followProvider, pollProvider } from './metrics.js';
import {
  type AcquireOptions,
  checkCall,
  type LockContext,
  type LockLogger,
  type ResolvedOptions,
  type RwLockOptions,
  resolveOptions,
  waitTimeoutMs,
} from './options.js';
import { type Family, familyOf, type Series, type Tracked } from './stats.js';
import { Warnings } from './warnings.js';

export type { AcquireOptions, LockContext, LockLogger, LockMode, RwLockOptions };

export interface HolderInfo {
  mode: LockMode;
  label: string;
  context: LockContext;
  /** When the hold (or, in `queued`, the wait) began: ms since the epoch. */
  sinceMs: number;
}

export interface LockSnapshot {
  name: string;
  holders: HolderInfo[];
  queued: HolderInfo[];
  writer?: HolderInfo;
  lastWriter?: HolderInfo & { releasedMs: number };
}

enum Phase {
  Queued,
  Held,
  Done,
}

/**
 * One acquisition from request to release. The same object is the core's queue node, the
 * holder, an entry of its lock name's in-progress lists (stats.ts) and a link of the flow's
 * chain of holds (AsyncLocalStorage): the uncontended path allocates nothing else.
 */
class Acquisition implements CoreRequest, Tracked {
  phase = Phase.Held;
  /** performance.now() when the wait began, then when the hold began. */
  startedMs = 0;
  queued = false;
  queuePrev: Acquisition | undefined = undefined;
  queueNext: Acquisition | undefined = undefined;
  familyPrev: Tracked | undefined = undefined;
  familyNext: Tracked | undefined = undefined;
  /** The lock's holders, oldest first (for snapshots). */
  holderPrev: Acquisition | undefined = undefined;
  holderNext: Acquisition | undefined = undefined;
  /** Set while queued. */
  waiting: Waiting | undefined = undefined;

  constructor(
    readonly owner: RwLock,
    readonly mode: LockMode,
    readonly label: string,
    readonly context: LockContext,
    readonly series: Series,
    /** The hold the flow was in when it asked (the chain re-entry is checked against). */
    readonly outer: Acquisition | undefined,
  ) {}
}

/** What only a queued acquisition needs. */
interface Waiting {
  resolve(): void;
  reject(error: LockError): void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const emptyContext: LockContext = Object.freeze({});

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** ms since the epoch of a performance.now() reading. */
function wallMs(monotonicMs: number): number {
  return performance.timeOrigin + monotonicMs;
}

function info(acquisition: Acquisition): HolderInfo {
  const { mode, label, context, startedMs } = acquisition;
  return { mode, label, context, sinceMs: wallMs(startedMs) };
}

/** The innermost hold still in progress on the chain from `entry` outwards. */
function innermostHeld(entry: Acquisition | undefined): Acquisition | undefined {
  while (entry !== undefined && entry.phase !== Phase.Held) entry = entry.outer;
  return entry;
}

/** The flow's chain of holds, innermost first: followed across `await` (trackAsync). */
const flows = flowStorage<Acquisition>();

/**
 * An async read-write lock for one event loop, taken only through closures: the locked interval
 * is exactly the closure. FIFO with reader batching (a queued writer blocks later readers, so
 * writers are not starved). A waiter that times out or is cancelled leaves the queue in O(1) and
 * the grant loop runs again in the same synchronous step, so nobody is left stuck behind it.
 *
 * Every state change is complete before anything outside the lock runs: loggers, metrics and
 * diagnostics subscribers are told afterwards, and nothing they do (even throw) reaches the lock.
 */
export class RwLock {
  readonly name: string;
  readonly #options: ResolvedOptions;
  readonly #core = new LockCore<Acquisition>();
  readonly #family: Family;
  readonly #warnings: Warnings;
  #holdersHead: Acquisition | undefined = undefined;
  #holdersTail: Acquisition | undefined = undefined;
  #lastWriter: Acquisition | undefined = undefined;
  #lastWriterReleasedMs = 0;
  readonly #trackAsync: boolean;
  #lastRead: Series | undefined = undefined;
  #lastWrite: Series | undefined = undefined;
  /** Holders whose closure is running synchronously right now (re-entry without ALS). */
  readonly #running: Acquisition[] = [];

  /** Throws LOCK_ERR_BAD_OPTION when an option is out of range (the message names it). */
  constructor(options: RwLockOptions) {
    this.#options = resolveOptions(options);
    this.name = this.#options.name;
    this.#trackAsync = this.#options.trackAsync;
    this.#family = familyOf(this.name);
    this.#warnings = new Warnings(this.name, this.#options.logger, this.#options.warnIntervalMs);
    pollProvider();
  }

  read<T>(label: string, fn: () => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    return this.#acquire('read', label, fn, options);
  }

  write<T>(label: string, fn: () => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    return this.#acquire('write', label, fn, options);
  }

  /** Requests waiting right now. */
  queueLength(): number {
    return this.#core.length;
  }

  snapshot(): LockSnapshot {
    const holders: HolderInfo[] = [];
    for (let holder = this.#holdersHead; holder !== undefined; holder = holder.holderNext)
      holders.push(info(holder));
    const writer = this.#core.writer;
    const last = this.#lastWriter;
    return {
      name: this.name,
      holders,
      queued: this.#core.queue().map(info),
      writer: writer && info(writer),
      lastWriter: last && { ...info(last), releasedMs: wallMs(this.#lastWriterReleasedMs) },
    };
  }

  #acquire<T>(
    mode: LockMode,
    label: string,
    fn: () => T | Promise<T>,
    options: AcquireOptions | undefined,
  ): Promise<T> {
    followProvider();
    const outer = this.#trackAsync ? flows.getStore() : undefined;
    try {
      checkCall(this.name, label, fn, options);
      // Checked on every call, so a bad timeout is refused whether or not the lock is free.
      if (options?.timeoutMs !== undefined)
        waitTimeoutMs(this.#options, label, mode, options.timeoutMs);
      if (outer !== undefined || this.#running.length > 0) this.#refuseReentry(mode, label, outer);
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = options?.signal;
    const acquisition = new Acquisition(
      this,
      mode,
      label,
      options?.context ?? emptyContext,
      this.#series(mode, label),
      outer === undefined ? undefined : innermostHeld(outer),
    );
    if (signal?.aborted) return Promise.reject(this.#cancelled(acquisition, 0));
    // The uncontended path takes the lock and runs the closure in this very step, without a
    // promise of its own: most acquisitions of a routing table are uncontended reads.
    if (this.#core.grantable(mode)) {
      this.#core.request(acquisition);
      this.#hold(acquisition, performance.now());
      acquisition.series.wait.recordZero();
      if (lockChannels.granted.hasSubscribers) this.#publishGranted(acquisition, 0);
      return this.#runHeld(acquisition, fn);
    }
    const timeoutMs = waitTimeoutMs(this.#options, label, mode, options?.timeoutMs);
    return this.#wait(acquisition, timeoutMs, signal).then(() => this.#runHeld(acquisition, fn));
  }

  /** The figures of a label: the last one used per mode is kept at hand (labels repeat). */
  #series(mode: LockMode, label: string): Series {
    if (mode === 'read') {
      const last = this.#lastRead;
      if (last !== undefined && last.label === label) return last;
      this.#lastRead = this.#family.series(mode, label);
      return this.#lastRead;
    }
    const last = this.#lastWrite;
    if (last !== undefined && last.label === label) return last;
    this.#lastWrite = this.#family.series(mode, label);
    return this.#lastWrite;
  }

  #refuseReentry(mode: LockMode, label: string, outer: Acquisition | undefined): void {
    let held = this.#running.at(-1);
    for (let entry = outer; held === undefined && entry !== undefined; entry = entry.outer)
      if (entry.owner === this && entry.phase === Phase.Held) held = entry;
    if (held === undefined) return;
    countRare('reentries', { lock: this.name, label, mode });
    if (lockChannels.reentry.hasSubscribers)
      lockChannels.reentry.publish({
        lock: this.name,
        label,
        mode,
        heldLabel: held.label,
        heldMode: held.mode,
      });
    throw new LockError(
      'LOCK_ERR_REENTRANT',
      `lock ${this.name}: "${label}" asks for ${mode} while its flow holds ${held.mode} as "${held.label}"; waiting would deadlock`,
      this.name,
      label,
    );
  }

  /** Runs the closure for a holder and releases once it settled (at once for a sync closure). */
  #runHeld<T>(holder: Acquisition, fn: () => T | Promise<T>): Promise<T> {
    let result: T | Promise<T>;
    try {
      result = this.#trackAsync ? flows.run(holder, fn) : this.#runTracked(holder, fn);
    } catch (error) {
      this.#release(holder);
      return Promise.reject(error);
    }
    if (!isPromiseLike(result)) {
      this.#release(holder);
      return Promise.resolve(result);
    }
    return Promise.resolve(result).then(
      (value) => {
        this.#release(holder);
        return value;
      },
      (error: unknown) => {
        this.#release(holder);
        throw error;
      },
    );
  }

  /** Without AsyncLocalStorage: re-entry is caught while the closure runs synchronously. */
  #runTracked<T>(holder: Acquisition, fn: () => T | Promise<T>): T | Promise<T> {
    this.#running.push(holder);
    try {
      return fn();
    } finally {
      this.#running.pop();
    }
  }

  /** The request becomes a holder: linked into the lock's and its name's lists of holds. */
  #hold(holder: Acquisition, now: number): void {
    holder.phase = Phase.Held;
    holder.startedMs = now;
    holder.holderPrev = this.#holdersTail;
    if (this.#holdersTail === undefined) this.#holdersHead = holder;
    else this.#holdersTail.holderNext = holder;
    this.#holdersTail = holder;
    const family = this.#family;
    family.holds.add(holder);
    if (holder.mode === 'read') family.readHolds++;
    else family.writeHolds++;
  }

  #release(holder: Acquisition): void {
    if (holder.phase !== Phase.Held) assert.fail('a holder released twice');
    const now = performance.now();
    const heldMs = now - holder.startedMs;
    holder.phase = Phase.Done;
    const { holderPrev, holderNext } = holder;
    if (holderPrev === undefined) this.#holdersHead = holderNext;
    else holderPrev.holderNext = holderNext;
    if (holderNext === undefined) this.#holdersTail = holderPrev;
    else holderNext.holderPrev = holderPrev;
    holder.holderPrev = holder.holderNext = undefined;
    const family = this.#family;
    family.holds.remove(holder);
    if (holder.mode === 'read') family.readHolds--;
    else {
      family.writeHolds--;
      this.#lastWriter = holder;
      this.#lastWriterReleasedMs = now;
    }
    holder.series.hold.record(heldMs);
    const granted = this.#core.release(holder);
    if (granted.length > 0) this.#grant(granted, now);
    // The lock's state is final: only now tell the outside world.
    if (lockChannels.released.hasSubscribers)
      lockChannels.released.publish({
        ...holder.series.attributes,
        context: holder.context,
        heldMs,
      });
    if (heldMs > this.#options.holdMsMax) {
      countRare('slowHolds', holder.series.attributes);
      this.#warnings.warn(
        'slow hold',
        () => ({ ...holder.series.attributes, context: holder.context, heldMs }),
        `lock ${this.name}: "${holder.label}" held ${holder.mode} for ${heldMs.toFixed(1)} ms`,
      );
    }
  }

  /** Queues a request that cannot be granted now; resolves when it is granted. */
  #wait(
    acquisition: Acquisition,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const { mode, label } = acquisition;
    if (this.#core.length >= this.#options.maxWaiters) {
      acquisition.phase = Phase.Done;
      countRare('queueFull', acquisition.series.attributes);
      const message = `lock ${this.name}: ${this.#core.length} requests already wait; "${label}" refused`;
      this.#warnings.warn('queue full', () => ({ ...acquisition.series.attributes }), message);
      return Promise.reject(new LockError('LOCK_ERR_QUEUE_FULL', message, this.name, label));
    }
    acquisition.phase = Phase.Queued;
    acquisition.startedMs = performance.now();
    this.#core.request(acquisition);
    this.#family.waits.add(acquisition);
    return new Promise<void>((resolve, reject) => {
      const waiting: Waiting = { resolve, reject, timer: undefined, signal, onAbort: undefined };
      acquisition.waiting = waiting;
      if (timeoutMs !== undefined) {
        waiting.timer = setTimeout(
          () =>
            this.#abandon(
              acquisition,
              'LOCK_ERR_TIMEOUT',
              `${mode} not granted within ${timeoutMs} ms`,
            ),
          timeoutMs,
        );
      }
      if (signal !== undefined) {
        waiting.onAbort = () =>
          this.#abandon(acquisition, 'LOCK_ERR_CANCELLED', `${mode} wait cancelled`);
        signal.addEventListener('abort', waiting.onAbort, { once: true });
      }
    });
  }

  /** Hands the lock to the requests the core granted, in the same synchronous step. */
  #grant(granted: readonly Acquisition[], now: number): void {
    // Each wait measured before #hold restarts the clock (startedMs) for the hold.
    const waits = granted.map((acquisition) => ({
      acquisition,
      waitMs: now - acquisition.startedMs,
    }));
    for (const { acquisition, waitMs } of waits) {
      this.#stopWaiting(acquisition);
      this.#hold(acquisition, now);
      acquisition.series.wait.record(waitMs);
      this.#takeWaiting(acquisition).resolve();
    }
    // Every grant is handed out before anything outside the lock runs.
    for (const { acquisition, waitMs } of waits) this.#reportGrant(acquisition, waitMs);
  }

  #reportGrant(acquisition: Acquisition, waitMs: number): void {
    if (lockChannels.granted.hasSubscribers) this.#publishGranted(acquisition, waitMs);
    if (waitMs <= this.#options.slowWaitMs) return;
    countRare('slowWaits', acquisition.series.attributes);
    this.#warnings.warn(
      'slow wait',
      () => ({ ...acquisition.series.attributes, context: acquisition.context, waitMs }),
      `lock ${this.name}: "${acquisition.label}" waited ${waitMs.toFixed(1)} ms for ${acquisition.mode}`,
    );
  }

  #publishGranted(acquisition: Acquisition, waitMs: number): void {
    lockChannels.granted.publish({
      ...acquisition.series.attributes,
      context: acquisition.context,
      waitMs,
    });
  }

  /** The request leaves the name's list of waits; its timer and abort listener are dropped. */
  /** The waiting request's settlers, taken once: a request granted or given up was waiting. */
  #takeWaiting(acquisition: Acquisition): Waiting {
    const waiting = acquisition.waiting;
    assert.ok(waiting, 'a request settled that was not waiting');
    acquisition.waiting = undefined;
    return waiting;
  }

  #stopWaiting(acquisition: Acquisition): void {
    this.#family.waits.remove(acquisition);
    const waiting = acquisition.waiting;
    if (waiting === undefined) return;
    clearTimeout(waiting.timer);
    if (waiting.onAbort !== undefined)
      waiting.signal?.removeEventListener('abort', waiting.onAbort);
  }

  /** A queued request gives up (timeout or cancel): it leaves the queue in O(1). */
  #abandon(
    acquisition: Acquisition,
    code: 'LOCK_ERR_TIMEOUT' | 'LOCK_ERR_CANCELLED',
    why: string,
  ): void {
    if (acquisition.phase !== Phase.Queued) return; // granted in this same tick: the grant stands
    const granted = this.#core.leave(acquisition);
    if (granted === null) return;
    const now = performance.now();
    const waitMs = now - acquisition.startedMs;
    acquisition.phase = Phase.Done;
    this.#stopWaiting(acquisition);
    const waiting = this.#takeWaiting(acquisition);
    if (code === 'LOCK_ERR_CANCELLED') waiting.reject(this.#cancelled(acquisition, waitMs));
    else waiting.reject(this.#timedOut(acquisition, why, waitMs));
    if (granted.length > 0) this.#grant(granted, now); // the one that left may have blocked these
  }

  #timedOut(acquisition: Acquisition, why: string, waitMs: number): LockError {
    const attributes = acquisition.series.attributes;
    const writer = this.#core.writer;
    const heldBy =
      writer === undefined
        ? `${this.#core.readers} readers inside`
        : `held for write by "${writer.label}" ${JSON.stringify(writer.context)} for ${(performance.now() - writer.startedMs).toFixed(0)} ms`;
    const message = `lock ${this.name}: "${acquisition.label}" ${why}; ${heldBy}`;
    countRare('timeouts', attributes);
    this.#publishAbandoned(acquisition, 'LOCK_ERR_TIMEOUT', waitMs);
    this.#warnings.warn(
      'timeout',
      () => ({
        ...attributes,
        context: acquisition.context,
        waitMs,
        writer: writer && info(writer),
        readers: this.#core.readers,
        queued: this.#core.length,
      }),
      message,
    );
    return new LockError('LOCK_ERR_TIMEOUT', message, this.name, acquisition.label);
  }

  #cancelled(acquisition: Acquisition, waitMs: number): LockError {
    const attributes = acquisition.series.attributes;
    const message = `lock ${this.name}: "${acquisition.label}" ${acquisition.mode} wait cancelled`;
    countRare('cancellations', attributes);
    this.#publishAbandoned(acquisition, 'LOCK_ERR_CANCELLED', waitMs);
    this.#warnings.warn(
      'cancel',
      () => ({ ...attributes, context: acquisition.context, waitMs }),
      message,
    );
    return new LockError('LOCK_ERR_CANCELLED', message, this.name, acquisition.label);
  }

  #publishAbandoned(acquisition: Acquisition, code: string, waitMs: number): void {
    if (lockChannels.abandoned.hasSubscribers)
      lockChannels.abandoned.publish({
        ...acquisition.series.attributes,
        context: acquisition.context,
        code,
        waitMs,
      });
  }
}

import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { LockCore, type LockMode } from './core.js';
import { lockChannels } from './diagnostics.js';
import { LockError } from './errors.js';
import { type LockMetrics, lockMetrics, watchQueueDepth } from './metrics.js';

export type { LockMode };
export type LockContext = Record<string, string | number | boolean>;

/** Anything with pino's `warn(object, message)`. */
export interface LockLogger {
  warn(details: object, message: string): void;
}

export interface RwLockOptions {
  /** Names the lock in errors, logs, metrics and snapshots. */
  name: string;
  /** Every write acquisition times out; this is the default bound. */
  writeTimeoutMs?: number;
  /** Default bound of read acquisitions; none when left out. */
  readTimeoutMs?: number;
  /** Requests allowed to wait at once; more get LOCK_ERR_QUEUE_FULL. */
  maxWaiters?: number;
  /** A hold longer than this is logged and counted (the lock is never released early). */
  holdMsMax?: number;
  /** A wait longer than this is logged. */
  slowWaitMs?: number;
  logger?: LockLogger;
  /**
   * Follow holders across `await` with AsyncLocalStorage, so that re-entry after an await is
   * refused too. Synchronous re-entry is always refused.
   */
  trackAsync?: boolean;
}

export interface AcquireOptions {
  /** What the holder works on (e.g. `{ app }`): shown in logs, errors and snapshots. */
  context?: LockContext;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface HolderInfo {
  mode: LockMode;
  label: string;
  context: LockContext;
  sinceMs: number;
}

export interface LockSnapshot {
  name: string;
  holders: HolderInfo[];
  queued: { mode: LockMode; label: string; context: LockContext; sinceMs: number }[];
  writer?: HolderInfo;
  lastWriter?: HolderInfo & { releasedMs: number };
}

interface Holder extends HolderInfo {
  id: number;
  released: boolean;
}

interface Waiter {
  mode: LockMode;
  label: string;
  context: LockContext;
  sinceMs: number;
  grant(): void;
}

const emptyContext: LockContext = Object.freeze({});

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

const flows = new AsyncLocalStorage<{ lock: RwLock; holder: Holder }[]>();

/**
 * An async read-write lock for one event loop, taken only through closures: the locked interval
 * is exactly the closure. FIFO with reader batching (a queued writer blocks later readers, so
 * writers are not starved). A waiter that times out or is cancelled leaves the queue and the
 * grant loop runs again in the same synchronous step, so nobody is left stuck behind it.
 */
export class RwLock {
  readonly name: string;
  readonly #options: Required<Omit<RwLockOptions, 'logger' | 'readTimeoutMs'>> &
    Pick<RwLockOptions, 'logger' | 'readTimeoutMs'>;
  readonly #core = new LockCore();
  /** Holders and waiters by the id the core knows them by. */
  readonly #holders = new Map<number, Holder>();
  readonly #waiters = new Map<number, Waiter>();
  #nextId = 1;
  #lastWriter: (HolderInfo & { releasedMs: number }) | undefined;
  /** Holders whose closure is running synchronously right now (re-entry without ALS). */
  readonly #running: Holder[] = [];
  readonly #metrics: LockMetrics;
  readonly #attributeCache = new Map<string, { lock: string; label: string; mode: LockMode }>();

  constructor(options: RwLockOptions) {
    this.name = options.name;
    this.#options = {
      writeTimeoutMs: 5_000,
      maxWaiters: 10_000,
      holdMsMax: 1_000,
      slowWaitMs: 100,
      trackAsync: true,
      ...options,
    };
    this.#metrics = lockMetrics();
    watchQueueDepth(this);
  }

  read<T>(label: string, fn: () => T | Promise<T>, options: AcquireOptions = {}): Promise<T> {
    return this.#acquire('read', label, fn, options);
  }

  write<T>(label: string, fn: () => T | Promise<T>, options: AcquireOptions = {}): Promise<T> {
    return this.#acquire('write', label, fn, options);
  }

  /** Requests waiting right now. */
  queueLength(): number {
    return this.#core.queue.length;
  }

  snapshot(): LockSnapshot {
    const info = ({ mode, label, context, sinceMs }: HolderInfo) => ({
      mode,
      label,
      context,
      sinceMs,
    });
    const writer = this.#core.writer === null ? undefined : this.#holders.get(this.#core.writer);
    return {
      name: this.name,
      holders: [...this.#holders.values()].map(info),
      queued: this.#core.queue.map(({ id }) => info(this.#waiters.get(id)!)),
      writer: writer && info(writer),
      lastWriter: this.#lastWriter,
    };
  }

  #acquire<T>(
    mode: LockMode,
    label: string,
    fn: () => T | Promise<T>,
    options: AcquireOptions,
  ): Promise<T> {
    const context = options.context ?? emptyContext;
    try {
      this.#refuseReentry(mode, label);
    } catch (error) {
      return Promise.reject(error);
    }
    // The uncontended path takes the lock and runs the closure in this very step, without a
    // promise of its own: most acquisitions of a routing table are uncontended reads.
    if (this.#core.grantable(mode)) return this.#runHeld(this.#take(mode, label, context), fn);
    return this.#enqueue(mode, label, context, options).then((holder) => this.#runHeld(holder, fn));
  }

  /** Runs the closure for a holder and releases once it settled (at once for a sync closure). */
  #runHeld<T>(holder: Holder, fn: () => T | Promise<T>): Promise<T> {
    let result: T | Promise<T>;
    try {
      result = this.#run(holder, fn);
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

  #refuseReentry(mode: LockMode, label: string): void {
    const held =
      this.#running.at(-1) ??
      flows.getStore()?.find((entry) => entry.lock === this && !entry.holder.released)?.holder;
    if (!held) return;
    this.#metrics.reentries.add(1, { lock: this.name, label, mode });
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

  /** The fast path: granted at once, no promise of our own. */
  #take(mode: LockMode, label: string, context: LockContext): Holder {
    const id = this.#nextId++;
    this.#core.request(id, mode);
    const holder: Holder = { id, mode, label, context, sinceMs: Date.now(), released: false };
    this.#holders.set(id, holder);
    if (lockChannels.granted.hasSubscribers)
      lockChannels.granted.publish({ ...this.#attributes(label, mode), context, waitMs: 0 });
    return holder;
  }

  #enqueue(
    mode: LockMode,
    label: string,
    context: LockContext,
    options: AcquireOptions,
  ): Promise<Holder> {
    const attributes = { lock: this.name, label, mode };
    if (this.#core.queue.length >= this.#options.maxWaiters) {
      this.#metrics.queueFull.add(1, attributes);
      const message = `lock ${this.name}: ${this.#core.queue.length} requests already wait; "${label}" refused`;
      return Promise.reject(new LockError('LOCK_ERR_QUEUE_FULL', message, this.name, label));
    }
    if (options.signal?.aborted) {
      return Promise.reject(
        new LockError(
          'LOCK_ERR_CANCELLED',
          `lock ${this.name}: "${label}" cancelled`,
          this.name,
          label,
        ),
      );
    }
    const timeoutMs =
      options.timeoutMs ??
      (mode === 'write' ? this.#options.writeTimeoutMs : this.#options.readTimeoutMs);
    const id = this.#nextId++;
    const sinceMs = Date.now();
    return new Promise<Holder>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(id);
      };
      const waiter: Waiter = {
        mode,
        label,
        context,
        sinceMs,
        grant: () => {
          leave();
          const holder: Holder = { id, mode, label, context, sinceMs: Date.now(), released: false };
          this.#holders.set(id, holder);
          this.#reportWait(holder, holder.sinceMs - sinceMs);
          resolve(holder);
        },
      };
      const drop = (code: 'LOCK_ERR_TIMEOUT' | 'LOCK_ERR_CANCELLED', why: string) => {
        const granted = this.#core.leave(id);
        if (granted === null) return; // granted in this same tick: the grant stands
        leave();
        if (code === 'LOCK_ERR_TIMEOUT') this.#metrics.timeouts.add(1, attributes);
        if (lockChannels.abandoned.hasSubscribers)
          lockChannels.abandoned.publish({
            ...attributes,
            context,
            code,
            waitMs: Date.now() - sinceMs,
          });
        this.#options.logger?.warn(
          { ...attributes, context, holders: this.snapshot().holders },
          why,
        );
        reject(new LockError(code, `lock ${this.name}: "${label}" ${why}`, this.name, label));
        this.#grant(granted); // the waiter that left may have been the one blocking these
      };
      const onAbort = () => drop('LOCK_ERR_CANCELLED', `${mode} wait cancelled`);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () => drop('LOCK_ERR_TIMEOUT', `${mode} not granted within ${timeoutMs} ms`),
          timeoutMs,
        );
      }
      this.#waiters.set(id, waiter);
      this.#core.request(id, mode);
    });
  }

  /** Hands the lock to the waiters the core granted, in the same synchronous step. */
  #grant(ids: number[]): void {
    for (const id of ids) this.#waiters.get(id)!.grant();
  }

  #run<T>(holder: Holder, fn: () => T | Promise<T>): T | Promise<T> {
    const call = () => {
      this.#running.push(holder);
      try {
        return fn();
      } finally {
        this.#running.pop();
      }
    };
    if (!this.#options.trackAsync) return call();
    const outer = flows.getStore() ?? [];
    return flows.run([...outer, { lock: this, holder }], call);
  }

  #release(holder: Holder): void {
    assert.ok(!holder.released, 'a holder released twice');
    holder.released = true;
    this.#holders.delete(holder.id);
    const releasedMs = Date.now();
    if (holder.mode === 'write') {
      const { mode, label, context, sinceMs } = holder;
      this.#lastWriter = { mode, label, context, sinceMs, releasedMs };
    }
    const heldMs = releasedMs - holder.sinceMs;
    const attributes = this.#attributes(holder.label, holder.mode);
    this.#metrics.holdMs.record(heldMs, attributes);
    if (lockChannels.released.hasSubscribers)
      lockChannels.released.publish({ ...attributes, context: holder.context, heldMs });
    if (heldMs > this.#options.holdMsMax) {
      this.#metrics.slowHolds.add(1, attributes);
      this.#options.logger?.warn(
        { ...attributes, context: holder.context, heldMs },
        'slow lock hold',
      );
    }
    this.#grant(this.#core.release(holder.id));
  }

  /** Metric attributes per label and mode, made once: labels are few and fixed in code. */
  #attributes(label: string, mode: LockMode): { lock: string; label: string; mode: LockMode } {
    const key = `${mode}:${label}`;
    let attributes = this.#attributeCache.get(key);
    if (attributes === undefined) {
      attributes = { lock: this.name, label, mode };
      if (this.#attributeCache.size < 1_000) this.#attributeCache.set(key, attributes);
    }
    return attributes;
  }

  #reportWait(holder: Holder, waitMs: number): void {
    const attributes = this.#attributes(holder.label, holder.mode);
    this.#metrics.waitMs.record(waitMs, attributes);
    if (lockChannels.granted.hasSubscribers)
      lockChannels.granted.publish({ ...attributes, context: holder.context, waitMs });
    if (waitMs > this.#options.slowWaitMs) {
      this.#options.logger?.warn(
        { ...attributes, context: holder.context, waitMs },
        'slow lock wait',
      );
    }
  }
}

import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { LockError } from './errors.js';
import { type LockMetrics, lockMetrics } from './metrics.js';

export type LockMode = 'read' | 'write';
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
  released: boolean;
}

interface Waiter {
  mode: LockMode;
  label: string;
  context: LockContext;
  sinceMs: number;
  grant(): void;
  fail(error: LockError): void;
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
  readonly #readers = new Set<Holder>();
  #writer: Holder | undefined;
  #lastWriter: (HolderInfo & { releasedMs: number }) | undefined;
  readonly #queue: Waiter[] = [];
  /** Holders whose closure is running synchronously right now (re-entry without ALS). */
  readonly #running: Holder[] = [];
  readonly #metrics: LockMetrics;

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
  }

  read<T>(label: string, fn: () => T | Promise<T>, options: AcquireOptions = {}): Promise<T> {
    return this.#acquire('read', label, fn, options);
  }

  write<T>(label: string, fn: () => T | Promise<T>, options: AcquireOptions = {}): Promise<T> {
    return this.#acquire('write', label, fn, options);
  }

  snapshot(): LockSnapshot {
    const info = ({ mode, label, context, sinceMs }: HolderInfo) => ({
      mode,
      label,
      context,
      sinceMs,
    });
    return {
      name: this.name,
      holders: [...(this.#writer ? [this.#writer] : []), ...this.#readers].map(info),
      queued: this.#queue.map(info),
      writer: this.#writer && info(this.#writer),
      lastWriter: this.#lastWriter,
    };
  }

  async #acquire<T>(
    mode: LockMode,
    label: string,
    fn: () => T | Promise<T>,
    options: AcquireOptions,
  ): Promise<T> {
    const context = options.context ?? {};
    this.#refuseReentry(mode, label);
    const holder = this.#grantable(mode)
      ? this.#take(mode, label, context)
      : await this.#enqueue(mode, label, context, options);
    try {
      return await this.#run(holder, fn);
    } finally {
      this.#release(holder);
    }
  }

  #refuseReentry(mode: LockMode, label: string): void {
    const held =
      this.#running.at(-1) ??
      flows.getStore()?.find((entry) => entry.lock === this && !entry.holder.released)?.holder;
    if (!held) return;
    this.#metrics.reentries.add(1, { lock: this.name, label, mode });
    throw new LockError(
      'LOCK_ERR_REENTRANT',
      `lock ${this.name}: "${label}" asks for ${mode} while its flow holds ${held.mode} as "${held.label}"; waiting would deadlock`,
      this.name,
      label,
    );
  }

  #grantable(mode: LockMode): boolean {
    if (this.#queue.length > 0 || this.#writer) return false;
    return mode === 'read' || this.#readers.size === 0;
  }

  #take(mode: LockMode, label: string, context: LockContext): Holder {
    const holder: Holder = { mode, label, context, sinceMs: Date.now(), released: false };
    if (mode === 'write') {
      assert.ok(!this.#writer && this.#readers.size === 0, 'write granted while the lock is held');
      this.#writer = holder;
    } else {
      assert.ok(!this.#writer, 'read granted while a writer holds the lock');
      this.#readers.add(holder);
    }
    return holder;
  }

  #enqueue(
    mode: LockMode,
    label: string,
    context: LockContext,
    options: AcquireOptions,
  ): Promise<Holder> {
    const attributes = { lock: this.name, label, mode };
    if (this.#queue.length >= this.#options.maxWaiters) {
      this.#metrics.queueFull.add(1, attributes);
      const message = `lock ${this.name}: ${this.#queue.length} requests already wait; "${label}" refused`;
      return Promise.reject(new LockError('LOCK_ERR_QUEUE_FULL', message, this.name, label));
    }
    const timeoutMs =
      options.timeoutMs ??
      (mode === 'write' ? this.#options.writeTimeoutMs : this.#options.readTimeoutMs);
    const sinceMs = Date.now();
    return new Promise<Holder>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#metrics.queueDepth.add(-1, { lock: this.name });
      };
      const waiter: Waiter = {
        mode,
        label,
        context,
        sinceMs,
        grant: () => {
          leave();
          const holder = this.#take(mode, label, context);
          this.#reportWait(holder, Date.now() - sinceMs);
          resolve(holder);
        },
        fail: (error) => {
          leave();
          reject(error);
        },
      };
      const drop = (code: 'LOCK_ERR_TIMEOUT' | 'LOCK_ERR_CANCELLED', why: string) => {
        const index = this.#queue.indexOf(waiter);
        if (index === -1) return; // already granted in this same tick: the grant stands
        this.#queue.splice(index, 1);
        if (code === 'LOCK_ERR_TIMEOUT') this.#metrics.timeouts.add(1, attributes);
        this.#options.logger?.warn(
          { lock: this.name, label, mode, context, holders: this.snapshot().holders },
          why,
        );
        waiter.fail(new LockError(code, `lock ${this.name}: "${label}" ${why}`, this.name, label));
        this.#grantWaiters(); // the waiter that left may have been the one blocking the head
      };
      const onAbort = () => drop('LOCK_ERR_CANCELLED', `${mode} wait cancelled`);
      if (options.signal?.aborted) {
        reject(
          new LockError(
            'LOCK_ERR_CANCELLED',
            `lock ${this.name}: "${label}" cancelled`,
            this.name,
            label,
          ),
        );
        return;
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () => drop('LOCK_ERR_TIMEOUT', `${mode} not granted within ${timeoutMs} ms`),
          timeoutMs,
        );
      }
      this.#queue.push(waiter);
      this.#metrics.queueDepth.add(1, { lock: this.name });
    });
  }

  /** Grants the queue head, and every reader right behind a granted reader. */
  #grantWaiters(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (this.#writer || (head.mode === 'write' && this.#readers.size > 0)) return;
      this.#queue.shift();
      head.grant();
      if (head.mode === 'write') return;
    }
  }

  async #run<T>(holder: Holder, fn: () => T | Promise<T>): Promise<T> {
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
    const releasedMs = Date.now();
    if (holder.mode === 'write') {
      assert.equal(this.#writer, holder, 'released a write the lock does not hold');
      this.#writer = undefined;
      const { mode, label, context, sinceMs } = holder;
      this.#lastWriter = { mode, label, context, sinceMs, releasedMs };
    } else {
      assert.ok(this.#readers.delete(holder), 'released a read the lock does not hold');
    }
    const heldMs = releasedMs - holder.sinceMs;
    const attributes = { lock: this.name, label: holder.label, mode: holder.mode };
    this.#metrics.holdMs.record(heldMs, attributes);
    if (heldMs > this.#options.holdMsMax) {
      this.#metrics.slowHolds.add(1, attributes);
      this.#options.logger?.warn(
        { ...attributes, context: holder.context, heldMs },
        'slow lock hold',
      );
    }
    this.#grantWaiters();
  }

  #reportWait(holder: Holder, waitMs: number): void {
    const attributes = { lock: this.name, label: holder.label, mode: holder.mode };
    this.#metrics.waitMs.record(waitMs, attributes);
    if (waitMs > this.#options.slowWaitMs) {
      this.#options.logger?.warn(
        { ...attributes, context: holder.context, waitMs },
        'slow lock wait',
      );
    }
  }
}

import { isMainThread } from 'node:worker_threads';
import { LockError, type LockErrorCode } from './errors.js';
import { flowStorage } from './flow-storage.js';
import {
  abandonWrite,
  tryDrain,
  tryRead,
  tryWriterBit,
  unlockRead,
  unlockWrite,
} from './shared-word.js';

/** Atomics.waitAsync is in Node 20 but not in the ES2023 typings this repository compiles with. */
const atomics = Atomics as typeof Atomics & {
  waitAsync(
    array: Int32Array,
    index: number,
    value: number,
    timeoutMs?: number,
  ): { async: false; value: string } | { async: true; value: Promise<string> };
};

export type TryResult<T> = { ok: true; value: T } | { ok: false };

export interface SharedRwLockOptions {
  /** Names the lock in errors. */
  name?: string;
}

/** What this thread holds of one lock (each thread has its own: module state is per thread). */
interface ThreadHolds {
  /** The innermost synchronous hold in progress on this thread. */
  sync: 'read' | 'write' | undefined;
  /** Asynchronous holds in progress on this thread (any flow). */
  async: number;
}

/** Per thread, keyed by the buffer object: every SharedRwLock over it in this thread shares it. */
const threadHolds = new WeakMap<SharedArrayBuffer, ThreadHolds>();

/** An asynchronous hold, as a link of its flow's chain (followed across `await`). */
interface FlowHold {
  readonly holds: ThreadHolds;
  readonly mode: 'read' | 'write';
  readonly outer: FlowHold | undefined;
  released: boolean;
}

const flows = flowStorage<FlowHold>();

/**
 * A read-write lock shared by worker threads through a SharedArrayBuffer, with parking_lot's
 * lock-word layout (see shared-word.ts). Workers block (`Atomics.wait`); the main thread, which
 * must not block, uses the async forms (`Atomics.waitAsync`). Closures only, as RwLock; a writer
 * that already holds WRITER_BIT blocks new readers, so writers are not starved.
 *
 * Re-entry is refused with LOCK_ERR_REENTRANT rather than left to hang: a thread that holds the
 * lock (in a closure, or across an `await` in an async form) and asks for it again with a
 * blocking form would wait for itself forever — seed 001's deadlock, with the writer bit set so
 * every other thread's reads block too. The async forms refuse re-entry within one flow. A
 * blocking `read()` on the main thread is refused with LOCK_ERR_WOULD_BLOCK, as is a blocking
 * write without a finite timeout.
 *
 * Not instrumented per call: it guards a routing table read by many threads, where each
 * acquisition must cost a few atomic operations.
 */
export class SharedRwLock {
  readonly buffer: SharedArrayBuffer;
  readonly name: string;
  readonly #word: Int32Array;
  readonly #holds: ThreadHolds;

  /** A new lock, or the lock living in `buffer` (pass `lock.buffer` to a worker). */
  constructor(
    buffer: SharedArrayBuffer = new SharedArrayBuffer(4),
    options: SharedRwLockOptions = {},
  ) {
    this.name = options.name ?? 'shared';
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < 4)
      throw this.#error(
        'LOCK_ERR_BAD_OPTION',
        'new',
        'buffer must be a SharedArrayBuffer of at least 4 bytes',
      );
    this.buffer = buffer;
    this.#word = new Int32Array(buffer, 0, 1);
    let holds = threadHolds.get(buffer);
    if (holds === undefined) {
      holds = { sync: undefined, async: 0 };
      threadHolds.set(buffer, holds);
    }
    this.#holds = holds;
  }

  /** The raw lock word (0 when free and nobody waits). */
  get word(): number {
    return Atomics.load(this.#word, 0);
  }

  /** Blocks until the read lock is held: worker threads only (LOCK_ERR_WOULD_BLOCK on main). */
  read<T>(fn: () => T): T {
    this.#refuseBlocking('read', Number.POSITIVE_INFINITY);
    waitSync(this.#word, () => tryRead(this.#word), Number.POSITIVE_INFINITY);
    return this.#runSync('read', fn);
  }

  /** Blocks until the write lock is held or `timeoutMs` passed (then LOCK_ERR_TIMEOUT). */
  write<T>(fn: () => T, timeoutMs = Number.POSITIVE_INFINITY): T {
    const attempt = this.tryWriteFor(timeoutMs, fn);
    if (!attempt.ok)
      throw this.#error('LOCK_ERR_TIMEOUT', 'write', `write not granted within ${timeoutMs} ms`);
    return attempt.value;
  }

  /** Runs `fn` under the write lock if it can be had within `timeoutMs`. */
  tryWriteFor<T>(timeoutMs: number, fn: () => T): TryResult<T> {
    this.#checkTimeout(timeoutMs);
    this.#refuseBlocking('write', timeoutMs);
    const deadline = performance.now() + timeoutMs;
    if (!waitSync(this.#word, () => tryWriterBit(this.#word), deadline)) return { ok: false };
    if (!waitSync(this.#word, () => tryDrain(this.#word), deadline) && !abandonWrite(this.#word)) {
      return { ok: false };
    }
    return { ok: true, value: this.#runSync('write', fn) };
  }

  async readAsync<T>(fn: () => T | Promise<T>): Promise<T> {
    const outer = this.#refuseFlowReentry('read');
    await waitAsync(this.#word, () => tryRead(this.#word), Number.POSITIVE_INFINITY);
    return this.#runAsync('read', fn, outer);
  }

  async writeAsync<T>(fn: () => T | Promise<T>, timeoutMs = Number.POSITIVE_INFINITY): Promise<T> {
    this.#checkTimeout(timeoutMs);
    const outer = this.#refuseFlowReentry('write');
    const deadline = performance.now() + timeoutMs;
    const held =
      (await waitAsync(this.#word, () => tryWriterBit(this.#word), deadline)) &&
      ((await waitAsync(this.#word, () => tryDrain(this.#word), deadline)) ||
        abandonWrite(this.#word));
    if (!held)
      throw this.#error('LOCK_ERR_TIMEOUT', 'write', `write not granted within ${timeoutMs} ms`);
    return this.#runAsync('write', fn, outer);
  }

  #runSync<T>(mode: 'read' | 'write', fn: () => T): T {
    const holds = this.#holds;
    const outer = holds.sync;
    holds.sync = mode;
    try {
      return fn();
    } finally {
      holds.sync = outer;
      if (mode === 'read') unlockRead(this.#word);
      else unlockWrite(this.#word);
    }
  }

  async #runAsync<T>(
    mode: 'read' | 'write',
    fn: () => T | Promise<T>,
    outer: FlowHold | undefined,
  ): Promise<T> {
    const hold: FlowHold = { holds: this.#holds, mode, outer, released: false };
    this.#holds.async++;
    try {
      return await flows.run(hold, fn);
    } finally {
      hold.released = true;
      this.#holds.async--;
      if (mode === 'read') unlockRead(this.#word);
      else unlockWrite(this.#word);
    }
  }

  /**
   * A blocking acquisition must not wait for this very thread: refused when the thread holds
   * the lock in any form, or when it is the main thread and the wait has no finite bound.
   */
  #refuseBlocking(mode: 'read' | 'write', timeoutMs: number): void {
    const holds = this.#holds;
    if (holds.sync !== undefined || holds.async > 0) {
      const held = holds.sync ?? `${holds.async} async hold(s)`;
      throw this.#error(
        'LOCK_ERR_REENTRANT',
        mode,
        `${mode} asked on a thread that holds it (${held}); waiting would deadlock`,
      );
    }
    if (isMainThread && timeoutMs === Number.POSITIVE_INFINITY)
      throw this.#error(
        'LOCK_ERR_WOULD_BLOCK',
        mode,
        `a blocking ${mode} without a timeout on the main thread; use ${mode}Async`,
      );
  }

  /** An async form asked by a flow that already holds this lock would wait for itself. */
  #refuseFlowReentry(mode: 'read' | 'write'): FlowHold | undefined {
    let outer = flows.getStore();
    while (outer?.released) outer = outer.outer;
    for (let entry = outer; entry !== undefined; entry = entry.outer) {
      if (entry.holds === this.#holds && !entry.released)
        throw this.#error(
          'LOCK_ERR_REENTRANT',
          mode,
          `${mode} asked by a flow that holds it (${entry.mode}); waiting would deadlock`,
        );
    }
    // An async form inside a synchronous hold of this thread is no re-entry: the synchronous
    // hold ends when its closure returns, so the async request only waits for it.
    return outer;
  }

  #checkTimeout(timeoutMs: unknown): void {
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0))
      throw this.#error(
        'LOCK_ERR_BAD_OPTION',
        'write',
        `timeoutMs must be a number of ms, 0 or more, or Infinity (got ${String(timeoutMs)})`,
      );
  }

  #error(code: LockErrorCode, label: string, message: string): LockError {
    return new LockError(code, `shared lock ${this.name}: ${message}`, this.name, label);
  }
}

function waitSync(word: Int32Array, attempt: () => true | number, deadline: number): boolean {
  for (;;) {
    const result = attempt();
    if (result === true) return true;
    const remainingMs = deadline - performance.now();
    if (remainingMs <= 0) return false;
    Atomics.wait(word, 0, result, Number.isFinite(remainingMs) ? remainingMs : undefined);
  }
}

async function waitAsync(
  word: Int32Array,
  attempt: () => true | number,
  deadline: number,
): Promise<boolean> {
  for (;;) {
    const result = attempt();
    if (result === true) return true;
    const remainingMs = deadline - performance.now();
    if (remainingMs <= 0) return false;
    const waiting = atomics.waitAsync(
      word,
      0,
      result,
      Number.isFinite(remainingMs) ? remainingMs : undefined,
    );
    if (waiting.async) await waiting.value;
  }
}

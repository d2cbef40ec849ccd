import { LockError } from './errors.js';
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

/**
 * A read-write lock shared by worker threads through a SharedArrayBuffer, with parking_lot's
 * lock-word layout (see shared-word.ts). Workers block (`Atomics.wait`); the main thread, which
 * must not block, uses the async forms (`Atomics.waitAsync`). Closures only, as RwLock; a writer
 * that already holds WRITER_BIT blocks new readers, so writers are not starved.
 *
 * Not re-entrant and not instrumented per call: it guards a routing table read by many threads,
 * where each acquisition must cost a few atomic operations.
 */
export class SharedRwLock {
  readonly buffer: SharedArrayBuffer;
  readonly #word: Int32Array;

  /** A new lock, or the lock living in `buffer` (pass `lock.buffer` to a worker). */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.buffer = buffer;
    this.#word = new Int32Array(buffer, 0, 1);
  }

  /** The raw lock word (0 when free and nobody waits). */
  get word(): number {
    return Atomics.load(this.#word, 0);
  }

  read<T>(fn: () => T): T {
    waitSync(this.#word, () => tryRead(this.#word), Number.POSITIVE_INFINITY);
    try {
      return fn();
    } finally {
      unlockRead(this.#word);
    }
  }

  /** Blocks until the write lock is held or `timeoutMs` passed (then LOCK_ERR_TIMEOUT). */
  write<T>(fn: () => T, timeoutMs = Number.POSITIVE_INFINITY): T {
    const attempt = this.tryWriteFor(timeoutMs, fn);
    if (!attempt.ok)
      throw new LockError(
        'LOCK_ERR_TIMEOUT',
        `shared lock: write not granted within ${timeoutMs} ms`,
        'shared',
        'write',
      );
    return attempt.value;
  }

  /** Runs `fn` under the write lock if it can be had within `timeoutMs`. */
  tryWriteFor<T>(timeoutMs: number, fn: () => T): TryResult<T> {
    const deadline = performance.now() + timeoutMs;
    if (!waitSync(this.#word, () => tryWriterBit(this.#word), deadline)) return { ok: false };
    if (!waitSync(this.#word, () => tryDrain(this.#word), deadline) && !abandonWrite(this.#word)) {
      return { ok: false };
    }
    try {
      return { ok: true, value: fn() };
    } finally {
      unlockWrite(this.#word);
    }
  }

  async readAsync<T>(fn: () => T | Promise<T>): Promise<T> {
    await waitAsync(this.#word, () => tryRead(this.#word), Number.POSITIVE_INFINITY);
    try {
      return await fn();
    } finally {
      unlockRead(this.#word);
    }
  }

  async writeAsync<T>(fn: () => T | Promise<T>, timeoutMs = Number.POSITIVE_INFINITY): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    const held =
      (await waitAsync(this.#word, () => tryWriterBit(this.#word), deadline)) &&
      ((await waitAsync(this.#word, () => tryDrain(this.#word), deadline)) ||
        abandonWrite(this.#word));
    if (!held)
      throw new LockError(
        'LOCK_ERR_TIMEOUT',
        `shared lock: write not granted within ${timeoutMs} ms`,
        'shared',
        'write',
      );
    try {
      return await fn();
    } finally {
      unlockWrite(this.#word);
    }
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

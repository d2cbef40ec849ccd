export interface DeadlineQueueOptions {
  /** Waiters held at most; past it a wait is refused at once. */
  waitersMax: number;
  /** A wait's deadline unless its caller gives a shorter one. */
  timeoutMs: number;
}

/** The caller's errors, so each says what was waited for. */
export interface DeadlineQueueErrors {
  /** The queue already holds `waiting` (= `waitersMax`) waiters. */
  full(waiting: number): Error;
  /** A waiter's deadline of `timeoutMs` passed. */
  timedOut(timeoutMs: number): Error;
  /** A waiter's signal aborted (without it, the signal's own reason). */
  aborted?(): Error;
}

/** A waiter taken off the queue: settled by the taker, its deadline and signal no longer run. */
export interface TakenWaiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

interface Waiter<T> extends TakenWaiter<T> {
  /** Stops the deadline and the signal's listener. */
  stop(): void;
}

/**
 * A bounded FIFO of waiters, each with its own deadline and, if given, an AbortSignal: fly-proxy's
 * wait for a pooled machine connection or a backhaul stream, the catalog's wait for capacity.
 * Past `waitersMax` a wait is refused at once; one whose deadline passes or whose signal aborts
 * leaves the queue and is rejected. Never an unbounded wait (seed 004).
 */
export class DeadlineQueue<T> {
  readonly #queue: Waiter<T>[] = [];

  constructor(
    private readonly options: DeadlineQueueOptions,
    private readonly errors: DeadlineQueueErrors,
  ) {}

  get length(): number {
    return this.#queue.length;
  }

  /** Joins the queue: resolves with what `take()`'s caller gives, or rejects (full, late, aborted). */
  wait(timeoutMs = this.options.timeoutMs, signal?: AbortSignal): Promise<T> {
    if (this.#queue.length >= this.options.waitersMax)
      return Promise.reject(this.errors.full(this.#queue.length));
    const aborted = () => this.errors.aborted?.() ?? (signal?.reason as Error);
    if (signal?.aborted) return Promise.reject(aborted());
    return new Promise<T>((resolve, reject) => {
      const leave = (error: Error) => {
        waiter.stop();
        this.#queue.splice(this.#queue.indexOf(waiter), 1);
        reject(error);
      };
      const onAbort = () => leave(aborted());
      const timer = setTimeout(
        () => leave(this.errors.timedOut(timeoutMs)),
        Math.max(0, timeoutMs),
      );
      const waiter: Waiter<T> = {
        resolve,
        reject,
        stop: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  /** The longest waiter, off the queue with its deadline stopped; undefined when none waits. */
  take(): TakenWaiter<T> | undefined {
    const waiter = this.#queue.shift();
    waiter?.stop();
    return waiter;
  }

  /** Rejects every waiter with `error` (what they wait for is gone). */
  rejectAll(error: Error): void {
    for (const waiter of this.#queue.splice(0)) {
      waiter.stop();
      waiter.reject(error);
    }
  }
}

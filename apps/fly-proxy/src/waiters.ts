export interface WaitersLimits {
  waitTimeoutMs: number;
  waitersMax: number;
}

export interface WaitersErrors {
  /** The queue already holds `waitersMax`. */
  full(): Error;
  /** A waiter's deadline passed. */
  timedOut(): Error;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** What a waiter taken off the queue is settled with (its deadline no longer runs). */
export interface TakenWaiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

/**
 * A bounded FIFO of requests waiting for a connection (or a stream slot), each with its own
 * deadline: the wait of the machine pools (http1/upstream-pools.ts) and of the backhaul sessions
 * (backhaul-session.ts). Past `waitersMax` a wait is refused at once; one that outlives
 * `waitTimeoutMs` leaves the queue and is rejected. The errors are the caller's, so each says
 * what was waited for.
 */
export class Waiters<T> {
  readonly #queue: Waiter<T>[] = [];

  constructor(
    private readonly limits: WaitersLimits,
    private readonly errors: WaitersErrors,
  ) {}

  get length(): number {
    return this.#queue.length;
  }

  /** Joins the queue: resolves with what `take()`'s caller gives, or rejects (full, late). */
  wait(): Promise<T> {
    if (this.#queue.length >= this.limits.waitersMax) return Promise.reject(this.errors.full());
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#queue.splice(this.#queue.indexOf(waiter), 1);
          reject(this.errors.timedOut());
        }, this.limits.waitTimeoutMs),
      };
      this.#queue.push(waiter);
    });
  }

  /** The longest waiter, off the queue with its deadline stopped; undefined when none waits. */
  take(): TakenWaiter<T> | undefined {
    const waiter = this.#queue.shift();
    if (waiter === undefined) return undefined;
    clearTimeout(waiter.timer);
    return waiter;
  }

  /** Rejects every waiter with `error` (the pool or session is gone). */
  rejectAll(error: Error): void {
    for (const waiter of this.#queue.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }
}

import { DeadlineQueue } from '@fleet/service/deadline-queue';
import { CatalogError } from './errors.js';

export interface AdmissionLimits {
  /** Requests of one app allowed to wait for capacity; more are shed at once. */
  queueMax: number;
  /** Bound on one wait (the default; a caller may pass less). */
  timeoutMs: number;
}

/**
 * The wait for capacity when every machine of an app is at its hard limit (Fly queues such
 * requests, then answers 503). FIFO per app and bounded; a release of load on one of the app's
 * machines wakes the longest waiter, which routes again (it may find the capacity gone and
 * wait again, with what remains of its deadline).
 */
export class Admission {
  readonly #waiting = new Map<string, DeadlineQueue<void>>();

  constructor(private readonly limits: AdmissionLimits) {}

  waiters(app: string): number {
    return this.#waiting.get(app)?.length ?? 0;
  }

  /** Resolves when capacity may have appeared; rejects with a typed error when shed or late. */
  async wait(app: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    let queue = this.#waiting.get(app);
    if (queue === undefined) {
      queue = this.#queueOf(app);
      this.#waiting.set(app, queue);
    }
    try {
      await queue.wait(timeoutMs, signal);
    } finally {
      // An app nobody waits for keeps no queue: the map holds only apps with waiters.
      if (queue.length === 0 && this.#waiting.get(app) === queue) this.#waiting.delete(app);
    }
  }

  /** Capacity may have appeared for the app: wake up to `count` waiters, oldest first. */
  wake(app: string, count = 1): void {
    const queue = this.#waiting.get(app);
    for (let i = 0; i < count; i++) queue?.take()?.resolve();
  }

  #queueOf(app: string): DeadlineQueue<void> {
    return new DeadlineQueue<void>(
      { waitersMax: this.limits.queueMax, timeoutMs: this.limits.timeoutMs },
      {
        full: (waiting) =>
          new CatalogError(
            'CATALOG_ERR_ADMISSION_SHED',
            `app ${app}: every machine is at its hard limit and ${waiting} requests already wait`,
            app,
          ),
        timedOut: (ms) =>
          new CatalogError(
            'CATALOG_ERR_ADMISSION_TIMEOUT',
            `app ${app}: every machine stayed at its hard limit for ${ms} ms`,
            app,
          ),
        aborted: () =>
          new CatalogError(
            'CATALOG_ERR_ADMISSION_TIMEOUT',
            `app ${app}: the wait for capacity was cancelled`,
            app,
          ),
      },
    );
  }
}

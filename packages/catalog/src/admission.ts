import { CatalogError } from './errors.js';

export interface AdmissionLimits {
  /** Requests of one app allowed to wait for capacity; more are shed at once. */
  queueMax: number;
  /** Bound on one wait (the default; a caller may pass less). */
  timeoutMs: number;
}

interface Waiter {
  wake(): void;
}

/**
 * The wait for capacity when every machine of an app is at its hard limit (Fly queues such
 * requests, then answers 503). FIFO per app and bounded; a release of load on one of the app's
 * machines wakes the longest waiter, which routes again (it may find the capacity gone and
 * wait again, with what remains of its deadline).
 */
export class Admission {
  readonly #waiting = new Map<string, Waiter[]>();

  constructor(private readonly limits: AdmissionLimits) {}

  waiters(app: string): number {
    return this.#waiting.get(app)?.length ?? 0;
  }

  /** Resolves when capacity may have appeared; rejects with a typed error when shed or late. */
  wait(app: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const queue = this.#waiting.get(app) ?? [];
    if (queue.length >= this.limits.queueMax) {
      return Promise.reject(
        new CatalogError(
          'CATALOG_ERR_ADMISSION_SHED',
          `app ${app}: every machine is at its hard limit and ${queue.length} requests already wait`,
          app,
        ),
      );
    }
    this.#waiting.set(app, queue);
    return new Promise<void>((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const index = queue.indexOf(waiter);
        if (index !== -1) queue.splice(index, 1);
        if (queue.length === 0 && this.#waiting.get(app) === queue) this.#waiting.delete(app);
      };
      const waiter: Waiter = {
        wake: () => {
          leave();
          resolve();
        },
      };
      const fail = (message: string) => {
        leave();
        reject(new CatalogError('CATALOG_ERR_ADMISSION_TIMEOUT', message, app));
      };
      const onAbort = () => fail(`app ${app}: the wait for capacity was cancelled`);
      const timer = setTimeout(
        () => fail(`app ${app}: every machine stayed at its hard limit for ${timeoutMs} ms`),
        Math.max(0, timeoutMs),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
    });
  }

  /** Capacity may have appeared for the app: wake up to `count` waiters, oldest first. */
  wake(app: string, count = 1): void {
    const queue = this.#waiting.get(app);
    if (queue === undefined) return;
    for (let i = 0; i < count; i++) {
      const oldest = queue[0];
      if (oldest === undefined) return;
      oldest.wake();
    }
  }
}

import { CatalogError } from './errors.js';

export interface LoaderLimits {
  /** Loads running at once. */
  concurrencyMax: number;
  /** Loads waiting for a slot; past it a new load is shed at once. */
  queueMax: number;
  /** Bound on a load from the moment it is asked for (queue wait included). */
  timeoutMs: number;
}

export interface LoaderHooks {
  shed(key: string): void;
  timedOut(key: string): void;
  /** `abandoned`: it ran on after its deadline (already reported through `timedOut`). */
  finished(key: string, outcome: 'ok' | 'failed' | 'abandoned', ms: number): void;
}

interface Job {
  key: string;
  app: string;
  run: (signal: AbortSignal) => Promise<void>;
  promise: Promise<void>;
  settle: (error?: Error) => void;
  controller: AbortController;
  timer: NodeJS.Timeout | undefined;
  startedMs: number;
  settled: boolean;
}

/**
 * Seed 004's lesson: the lazy loader must shed instead of queueing without bound. One job per
 * key (callers asking for a key already loading share its promise); at most `concurrencyMax`
 * running and `queueMax` waiting; every job has a deadline from the moment it was asked for.
 * Past the queue bound the caller gets CATALOG_ERR_LOAD_SHED at once; past the deadline
 * CATALOG_ERR_LOAD_TIMEOUT, and the running job is aborted (its slot frees when it settles,
 * so the bound on running loads holds even for loads that time out).
 */
export class Loader {
  readonly #jobs = new Map<string, Job>();
  readonly #queue: Job[] = [];
  #running = 0;

  constructor(
    private readonly limits: LoaderLimits,
    private readonly hooks: LoaderHooks,
  ) {}

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** True while a job for `key` runs or waits. */
  has(key: string): boolean {
    return this.#jobs.has(key);
  }

  load(key: string, app: string, run: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const existing = this.#jobs.get(key);
    if (existing !== undefined) return existing.promise;
    if (this.#running >= this.limits.concurrencyMax && this.#queue.length >= this.limits.queueMax) {
      this.hooks.shed(key);
      return Promise.reject(
        new CatalogError(
          'CATALOG_ERR_LOAD_SHED',
          `catalog: ${this.#running} loads run and ${this.#queue.length} wait; ${key} is shed`,
          app,
        ),
      );
    }
    let settle!: (error?: Error) => void;
    const promise = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    const job: Job = {
      key,
      app,
      run,
      promise,
      settle,
      controller: new AbortController(),
      timer: undefined,
      startedMs: performance.now(),
      settled: false,
    };
    job.timer = setTimeout(() => this.#timeout(job), this.limits.timeoutMs);
    this.#jobs.set(key, job);
    if (this.#running < this.limits.concurrencyMax) this.#start(job);
    else this.#queue.push(job);
    return promise;
  }

  #start(job: Job): void {
    this.#running++;
    let outcome: 'ok' | 'failed' | 'abandoned' = 'ok';
    job
      .run(job.controller.signal)
      .then(
        () => this.#finish(job),
        (error: unknown) => {
          outcome = job.settled ? 'abandoned' : 'failed';
          this.#finish(job, asLoadError(error, job));
        },
      )
      .finally(() => {
        this.#running--;
        this.hooks.finished(job.key, outcome, performance.now() - job.startedMs);
        this.#next();
      });
  }

  #next(): void {
    while (this.#running < this.limits.concurrencyMax) {
      const job = this.#queue.shift();
      if (job === undefined) return;
      this.#start(job);
    }
  }

  #finish(job: Job, error?: Error): void {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.timer);
    if (this.#jobs.get(job.key) === job) this.#jobs.delete(job.key);
    job.settle(error);
  }

  #timeout(job: Job): void {
    if (job.settled) return;
    const index = this.#queue.indexOf(job);
    if (index !== -1) this.#queue.splice(index, 1);
    this.hooks.timedOut(job.key);
    job.controller.abort();
    this.#finish(
      job,
      new CatalogError(
        'CATALOG_ERR_LOAD_TIMEOUT',
        `catalog: ${job.key} not loaded within ${this.limits.timeoutMs} ms (${index !== -1 ? 'still queued' : 'loading'})`,
        job.app,
      ),
    );
  }
}

function asLoadError(error: unknown, job: Job): CatalogError {
  if (error instanceof CatalogError) return error;
  return new CatalogError(
    'CATALOG_ERR_LOAD_FAILED',
    `catalog: loading ${job.key} failed: ${(error as Error)?.message ?? String(error)}`,
    job.app,
  );
}

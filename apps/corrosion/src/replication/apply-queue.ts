import type { Logger } from '@fleet/service';
import type { Store } from '../store.js';
import { type ApplyOutcome, applyChangesets } from './apply.js';
import { type ApplyPacing, nextDelayMs } from './apply-pacing.js';
import type { Changeset } from './codec.js';
import { LagWindow } from './lag-window.js';

export interface ApplyQueueOptions {
  /** Changesets applied in one transaction at most. */
  batchMax: number;
  /**
   * How long the first changeset of a batch waits for company, between `delayMsMin` and
   * `delayMsMax` by the arrival rate (see apply-pacing.ts). One transaction per datagram rewrites
   * the same few pages over and over; a few milliseconds of batching writes them once.
   */
  pacing: ApplyPacing;
  /** Changesets waiting at most; more are dropped (anti-entropy sync brings them back). */
  queueMax: number;
  logger: Logger;
  /** After each batch: what changed, to notify subscriptions and pass fresh changesets on. */
  onApplied(outcome: ApplyOutcome): void;
}

/**
 * Incoming changesets, applied in batches of one transaction each. Batches run on a later turn
 * of the event loop, so a burst of datagrams or a long sync never holds the API back for longer
 * than one batch. Adaptive: the wait for company grows while changesets arrive fast, bounded.
 */
export class ApplyQueue {
  readonly #queue: Changeset[] = [];
  #scheduled = false;
  #closed = false;
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  #dropped = 0;
  #applied = 0;
  #receivedBySync = 0;
  #delayMs: number;
  /** When the first changeset of the batch being gathered arrived. */
  #gatheringSince = 0;
  /** Milliseconds from a version's commit on its origin to its merge here, last batch's worst. */
  #lagMs = 0;
  /** When the last batch with fresh changesets was applied. */
  #lagAt = 0;
  /** Every fresh changeset's lag, for the p99 of /v1/health. */
  readonly lags = new LagWindow();

  constructor(
    private readonly store: Store,
    private readonly options: ApplyQueueOptions,
  ) {
    this.#delayMs = options.pacing.delayMsMin;
  }

  /** The wait the next batch gathers for. */
  get delayMs(): number {
    return this.#delayMs;
  }

  /** The changesets waiting, oldest first. */
  get queued(): readonly Changeset[] {
    return this.#queue;
  }

  get length(): number {
    return this.#queue.length;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get applied(): number {
    return this.#applied;
  }

  get lagMs(): number {
    return this.#lagMs;
  }

  /** The last fresh batch's worst lag if it was applied within `withinMs`, else 0. */
  recentLagMs(withinMs: number): number {
    return Date.now() - this.#lagAt <= withinMs ? this.#lagMs : 0;
  }

  /** Stops applying: what is queued is dropped (sync brings it back after a restart). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer as NodeJS.Timeout);
    clearImmediate(this.#timer as NodeJS.Immediate);
    this.#queue.length = 0;
  }

  /** Changesets pushed by sync (either side of it): what broadcast did not bring in time. */
  get receivedBySync(): number {
    return this.#receivedBySync;
  }

  push(sets: Changeset[], bySync = false): void {
    if (this.#closed) return;
    if (bySync) this.#receivedBySync += sets.length;
    const room = this.options.queueMax - this.#queue.length;
    if (sets.length > room) this.#dropped += sets.length - Math.max(room, 0);
    for (const set of sets.slice(0, Math.max(room, 0))) this.#queue.push(set);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed || this.#queue.length === 0) return;
    this.#scheduled = true;
    this.#gatheringSince = Date.now();
    const run = () => {
      this.#scheduled = false;
      const queued = this.#queue.length;
      this.#delayMs = nextDelayMs(
        this.options.pacing,
        this.#delayMs,
        queued,
        Date.now() - this.#gatheringSince,
      );
      const batch = this.#queue.splice(0, this.options.batchMax);
      try {
        const outcome = applyChangesets(this.store, batch);
        this.#applied += outcome.merged;
        const now = Date.now();
        this.#lagMs = 0;
        if (outcome.fresh.length > 0) this.#lagAt = now;
        for (const set of outcome.fresh) {
          this.#lagMs = Math.max(this.#lagMs, now - set.ts);
          this.lags.record(now - set.ts);
        }
        this.options.onApplied(outcome);
      } catch (error) {
        // A batch that fails rolls back whole; its versions stay gaps that sync fills again.
        this.store.bookkeeping.reload();
        this.options.logger.error({ err: error, changesets: batch.length }, 'apply failed');
      }
      this.#schedule();
    };
    this.#timer =
      this.#queue.length >= this.options.batchMax
        ? setImmediate(run)
        : setTimeout(run, this.#delayMs);
  }
}

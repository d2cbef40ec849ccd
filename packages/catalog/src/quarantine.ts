import { LockError } from '@fleet/locks';
import { backoffMs } from '@fleet/service/backoff';
import type { FollowedTable } from './rows.js';

/** Why an update was held against its app: its application threw, or re-entered a lock. */
export type QuarantineReason = 'throws' | 'reentrant';

/** One quarantined app, as `catalog.quarantine()` lists it. */
export interface QuarantineEntry {
  app: string;
  /** The table of the update at fault. */
  table: FollowedTable;
  reason: QuarantineReason;
  /** When it was quarantined (epoch ms). */
  atMs: number;
  /** The change id of the update at fault (undefined for an initial row or a reload). */
  changeId: number | undefined;
  /** What the application threw. */
  error: string;
  /** Resyncs from corrosion tried since (each failed). */
  retries: number;
  /** When the next resync is tried (epoch ms). */
  nextRetryMs: number;
}

/**
 * Whether a failed update is the update's own fault (quarantine its app) or only refused by its
 * lock for contention (a timeout, a full queue, a cancelled wait: resync the app, the update
 * itself is fine). Seed 002: the poison update re-entered the catalog lock.
 */
export function faultOf(error: unknown): QuarantineReason | undefined {
  if (error instanceof LockError)
    return error.code === 'LOCK_ERR_REENTRANT' ? 'reentrant' : undefined;
  return 'throws';
}

/**
 * Apps whose updates are held back (seed 002): one poisonous update must not take the proxy
 * down. A quarantined app keeps serving its last rows; its later updates are not applied (the
 * resync reads every row again); a resync from corrosion is tried after `retryMs`, doubling up
 * to `retryMsMax`, and releases the app when it applies cleanly. At most one entry per app held.
 */
export class Quarantine {
  readonly #entries = new Map<string, QuarantineEntry>();

  constructor(private readonly limits: { retryMs: number; retryMsMax: number }) {}

  get size(): number {
    return this.#entries.size;
  }

  has(app: string): boolean {
    return this.#entries.has(app);
  }

  add(entry: Omit<QuarantineEntry, 'retries' | 'nextRetryMs'>): QuarantineEntry {
    const held: QuarantineEntry = {
      ...entry,
      retries: 0,
      nextRetryMs: entry.atMs + this.limits.retryMs,
    };
    this.#entries.set(entry.app, held);
    return held;
  }

  /** A resync starts: not due again until it failed (retryLater) or released the app. */
  begin(app: string): void {
    const entry = this.#entries.get(app);
    if (entry !== undefined) entry.nextRetryMs = Number.POSITIVE_INFINITY;
  }

  /** A resync failed: try again later (backoff doubling up to retryMsMax, with jitter). */
  retryLater(app: string, nowMs: number): void {
    const entry = this.#entries.get(app);
    if (entry === undefined) return;
    entry.retries++;
    const delayMs = backoffMs(entry.retries, {
      baseMs: this.limits.retryMs,
      maxMs: this.limits.retryMsMax,
    });
    entry.nextRetryMs = nowMs + delayMs;
  }

  release(app: string): QuarantineEntry | undefined {
    const entry = this.#entries.get(app);
    this.#entries.delete(app);
    return entry;
  }

  /** Apps whose resync is due. */
  due(nowMs: number): string[] {
    const due: string[] = [];
    for (const entry of this.#entries.values()) if (entry.nextRetryMs <= nowMs) due.push(entry.app);
    return due;
  }

  list(): QuarantineEntry[] {
    return [...this.#entries.values()].map((entry) => ({ ...entry }));
  }
}

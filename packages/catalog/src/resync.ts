import { backoffMs } from '@fleet/service/backoff';

/**
 * Why an app must be read again from corrosion: an update to it was refused by its lock (a
 * write timeout, a full queue), or its table's stream started over (lazy mode keeps serving the
 * app's rows meanwhile).
 */
export type ResyncReason = 'refused' | 'reset';

interface Pending {
  reason: ResyncReason;
  attempts: number;
  dueMs: number;
  running: boolean;
}

/**
 * Apps waiting for a resync, with bounded retries: a resync that fails is tried again after
 * `retryMs` doubling (with jitter), at most `attemptsMax` times; then the app is left to be reloaded on its
 * next use (it stays marked stale). One entry per app held, so bounded by the apps held.
 */
export class ResyncQueue {
  readonly #pending = new Map<string, Pending>();

  constructor(private readonly limits: { attemptsMax: number; retryMs: number }) {}

  get size(): number {
    return this.#pending.size;
  }

  has(app: string): boolean {
    return this.#pending.has(app);
  }

  schedule(app: string, reason: ResyncReason, nowMs: number): void {
    const pending = this.#pending.get(app);
    if (pending === undefined) {
      this.#pending.set(app, { reason, attempts: 0, dueMs: nowMs, running: false });
    } else if (!pending.running) pending.dueMs = Math.min(pending.dueMs, nowMs);
  }

  /** Up to `max` apps due now, marked running. */
  take(nowMs: number, max: number): string[] {
    const due: string[] = [];
    if (max <= 0) return due;
    for (const [app, pending] of this.#pending) {
      if (pending.running || pending.dueMs > nowMs) continue;
      pending.running = true;
      due.push(app);
      if (due.length >= max) break;
    }
    return due;
  }

  done(app: string): void {
    this.#pending.delete(app);
  }

  /** A resync failed: false when it has used its attempts (the entry is gone). */
  failed(app: string, nowMs: number): boolean {
    const pending = this.#pending.get(app);
    if (pending === undefined) return false;
    pending.attempts++;
    pending.running = false;
    if (pending.attempts >= this.limits.attemptsMax) {
      this.#pending.delete(app);
      return false;
    }
    pending.dueMs =
      nowMs +
      backoffMs(pending.attempts - 1, {
        baseMs: this.limits.retryMs,
        maxMs: Number.POSITIVE_INFINITY,
      });
    return true;
  }

  counts(): Record<ResyncReason, number> {
    const counts = { refused: 0, reset: 0 };
    for (const pending of this.#pending.values()) counts[pending.reason]++;
    return counts;
  }
}

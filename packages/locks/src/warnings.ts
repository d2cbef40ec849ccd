import { countRare } from './metrics.js';
import type { LockLogger } from './options.js';

/** The kinds of warning a lock logs; each is limited on its own. */
export type WarningKind = 'timeout' | 'cancel' | 'slow hold' | 'slow wait' | 'queue full';

interface KindState {
  /** performance.now() before which further warnings of this kind are held back. */
  quietUntilMs: number;
  suppressed: number;
  summary: NodeJS.Timeout | undefined;
}

let loggerFailureReported = false;

/**
 * A lock's warnings: at most one line per kind per `intervalMs`, the rest counted and summarised
 * in one line when the interval ends (a storm of 10,000 timeouts logs two lines, not 10,000).
 *
 * Callers warn only after the lock's state is final, and nothing the logger does reaches the
 * lock: a logger that throws is counted (`lock_logger_errors`), reported once per process as a
 * process warning, and otherwise ignored.
 */
export class Warnings {
  readonly #kinds = new Map<WarningKind, KindState>();

  constructor(
    readonly lock: string,
    readonly logger: LockLogger | undefined,
    readonly intervalMs: number,
  ) {}

  /** Logs `message` now, or holds it back if a line of this kind went out within the interval. */
  warn(kind: WarningKind, details: () => object, message: string): void {
    if (this.logger === undefined) return;
    const now = performance.now();
    let state = this.#kinds.get(kind);
    if (state === undefined) {
      state = { quietUntilMs: 0, suppressed: 0, summary: undefined };
      this.#kinds.set(kind, state);
    }
    if (now >= state.quietUntilMs) {
      state.quietUntilMs = now + this.intervalMs;
      this.#emit(details, message);
      return;
    }
    state.suppressed++;
    countRare('warningsSuppressed', { lock: this.lock });
    if (state.summary === undefined) {
      const current = state;
      current.summary = setTimeout(
        () => this.#summarise(kind, current),
        Math.max(0, state.quietUntilMs - now),
      );
      current.summary.unref();
    }
  }

  #summarise(kind: WarningKind, state: KindState): void {
    state.summary = undefined;
    const suppressed = state.suppressed;
    state.suppressed = 0;
    if (suppressed === 0) return;
    // The summary opens a new interval: a storm that goes on yields one summary per interval.
    state.quietUntilMs = performance.now() + this.intervalMs;
    this.#emit(
      () => ({ lock: this.lock, kind, suppressed, intervalMs: this.intervalMs }),
      `lock ${this.lock}: ${suppressed} more "${kind}" warnings in the last ${this.intervalMs} ms`,
    );
  }

  #emit(details: () => object, message: string): void {
    try {
      this.logger?.warn(details(), message);
    } catch (error) {
      countRare('loggerErrors', { lock: this.lock });
      if (!loggerFailureReported) {
        loggerFailureReported = true;
        process.emitWarning(
          `@fleet/locks: the logger of lock ${this.lock} threw (${String(error)}); lock warnings it throws on are dropped`,
        );
      }
    }
  }
}

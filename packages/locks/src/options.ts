import { LockError } from './errors.js';

export type LockContext = Record<string, string | number | boolean>;

/** Anything with pino's `warn(object, message)`. */
export interface LockLogger {
  warn(details: object, message: string): void;
}

/**
 * Options of RwLock. An option given as `undefined` takes its default, exactly as if it were
 * left out (spreading `{ writeTimeoutMs: undefined }` must not switch write timeouts off).
 */
export interface RwLockOptions {
  /** Names the lock in errors, logs, metrics and snapshots. */
  name: string;
  /** Every write acquisition times out; this is the default bound (finite, 0 to 2^31-1 ms). */
  writeTimeoutMs?: number;
  /** Default bound of read acquisitions; none when left out or `Infinity`. */
  readTimeoutMs?: number;
  /** Requests allowed to wait at once; more get LOCK_ERR_QUEUE_FULL. */
  maxWaiters?: number;
  /** A hold longer than this is logged and counted (the lock is never released early). */
  holdMsMax?: number;
  /** A wait longer than this is logged and counted. */
  slowWaitMs?: number;
  /**
   * At most one warning of each kind (timeout, cancel, slow hold, slow wait, queue full) per
   * lock in this interval; the ones held back are summarised in one line when it ends.
   */
  warnIntervalMs?: number;
  logger?: LockLogger;
  /**
   * Follow holders across `await` with AsyncLocalStorage, so that re-entry after an await is
   * refused too. Synchronous re-entry is always refused.
   */
  trackAsync?: boolean;
}

export interface AcquireOptions {
  /** What the holder works on (e.g. `{ app }`): shown in logs, errors and snapshots. */
  context?: LockContext;
  /**
   * Bound of this wait, 0 to 2^31-1 ms; `undefined` takes the lock's default. A read may pass
   * `Infinity` for no timeout; a write always times out.
   */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ResolvedOptions {
  readonly name: string;
  readonly writeTimeoutMs: number;
  /** `undefined`: reads wait without a timeout. */
  readonly readTimeoutMs: number | undefined;
  readonly maxWaiters: number;
  readonly holdMsMax: number;
  readonly slowWaitMs: number;
  readonly warnIntervalMs: number;
  readonly logger: LockLogger | undefined;
  readonly trackAsync: boolean;
}

/** The longest delay a Node.js timer honours; a longer one fires after 1 ms. */
export const timerMsMax = 2 ** 31 - 1;

export const defaultOptions = {
  writeTimeoutMs: 5_000,
  maxWaiters: 10_000,
  holdMsMax: 1_000,
  slowWaitMs: 100,
  warnIntervalMs: 1_000,
  trackAsync: true,
} as const;

function bad(lock: string, label: string, message: string): LockError {
  return new LockError('LOCK_ERR_BAD_OPTION', `lock ${lock}: ${message}`, lock, label);
}

function describe(value: unknown): string {
  return typeof value === 'number' || value === undefined || value === null
    ? String(value)
    : typeof value;
}

/** A delay that becomes a timer: a number from 0 to 2^31-1 ms. */
function timerMs(lock: string, label: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= timerMsMax))
    throw bad(
      lock,
      label,
      `${field} must be a number of ms from 0 to ${timerMsMax} (got ${describe(value)})`,
    );
  return value;
}

/** A threshold compared against, never a timer: 0 or more, `Infinity` allowed (never). */
function thresholdMs(lock: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0))
    throw bad(lock, '', `${field} must be a number of ms, 0 or more (got ${describe(value)})`);
  return value;
}

/** Checks every option of a new lock and fills in the defaults. Throws LOCK_ERR_BAD_OPTION. */
export function resolveOptions(options: RwLockOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null)
    throw bad('?', '', 'options must be an object with at least a name');
  const { name } = options;
  if (typeof name !== 'string' || name.length === 0)
    throw bad(String(name), '', `name must be a non-empty string (got ${describe(name)})`);
  const writeTimeoutMs = options.writeTimeoutMs ?? defaultOptions.writeTimeoutMs;
  if (writeTimeoutMs === Number.POSITIVE_INFINITY)
    throw bad(name, '', 'writeTimeoutMs must be finite: every write times out (seed 001)');
  const readTimeoutMs = options.readTimeoutMs;
  const maxWaiters = options.maxWaiters ?? defaultOptions.maxWaiters;
  if (!Number.isSafeInteger(maxWaiters) || maxWaiters < 0)
    throw bad(
      name,
      '',
      `maxWaiters must be a whole number, 0 or more (got ${describe(maxWaiters)})`,
    );
  const logger = options.logger;
  if (logger !== undefined && typeof logger?.warn !== 'function')
    throw bad(name, '', 'logger must have a warn(details, message) method');
  const trackAsync = options.trackAsync ?? defaultOptions.trackAsync;
  if (typeof trackAsync !== 'boolean')
    throw bad(name, '', `trackAsync must be a boolean (got ${describe(trackAsync)})`);
  return {
    name,
    writeTimeoutMs: timerMs(name, '', 'writeTimeoutMs', writeTimeoutMs),
    readTimeoutMs:
      readTimeoutMs === undefined || readTimeoutMs === Number.POSITIVE_INFINITY
        ? undefined
        : timerMs(name, '', 'readTimeoutMs', readTimeoutMs),
    maxWaiters,
    holdMsMax: thresholdMs(name, 'holdMsMax', options.holdMsMax ?? defaultOptions.holdMsMax),
    slowWaitMs: thresholdMs(name, 'slowWaitMs', options.slowWaitMs ?? defaultOptions.slowWaitMs),
    warnIntervalMs: timerMs(
      name,
      '',
      'warnIntervalMs',
      options.warnIntervalMs ?? defaultOptions.warnIntervalMs,
    ),
    logger,
    trackAsync,
  };
}

/**
 * The bound of one wait: the call's `timeoutMs`, else the lock's default for the mode.
 * `undefined` means no timer at all (reads only). Throws LOCK_ERR_BAD_OPTION.
 */
export function waitTimeoutMs(
  lock: ResolvedOptions,
  label: string,
  mode: 'read' | 'write',
  timeoutMs: unknown,
): number | undefined {
  if (timeoutMs === undefined) return mode === 'write' ? lock.writeTimeoutMs : lock.readTimeoutMs;
  if (timeoutMs === Number.POSITIVE_INFINITY) {
    if (mode === 'read') return undefined;
    throw bad(
      lock.name,
      label,
      `"${label}": a write's timeoutMs must be finite: every write times out`,
    );
  }
  return timerMs(lock.name, label, `"${label}": timeoutMs`, timeoutMs);
}

/** Checks what a call passes besides its timeout. Throws LOCK_ERR_BAD_OPTION. */
export function checkCall(lock: string, label: unknown, fn: unknown, options: unknown): void {
  if (typeof label !== 'string' || label.length === 0)
    throw bad(lock, String(label), `the label must be a non-empty string (got ${describe(label)})`);
  if (typeof fn !== 'function') throw bad(lock, label, `"${label}": fn must be a function`);
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null)
    throw bad(lock, label, `"${label}": options must be an object`);
  const { context, signal } = options as AcquireOptions;
  if (context !== undefined && (typeof context !== 'object' || context === null))
    throw bad(lock, label, `"${label}": context must be an object`);
  if (signal !== undefined && typeof (signal as { aborted?: unknown })?.aborted !== 'boolean')
    throw bad(lock, label, `"${label}": signal must be an AbortSignal`);
}

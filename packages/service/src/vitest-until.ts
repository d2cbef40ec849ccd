import { inspect } from 'node:util';
import { vi } from 'vitest';

/**
 * Waits for an observable event in a test instead of sleeping: polls `probe` until its value is
 * accepted — by `accept`, or without one, any value but undefined or false — and answers it.
 * Past `timeoutMs` it throws, naming `what` and the last value seen. For tests only (it imports
 * vitest): the `@fleet/service/vitest-until` subpath, the one poller every workspace's tests share.
 */
export function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs?: number,
): Promise<T>;
export function until<T>(
  what: string,
  probe: () => T | Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs?: number,
): Promise<T>;
export function until<T>(
  what: string,
  probe: () => T | Promise<T>,
  acceptOrTimeoutMs?: ((value: T) => boolean) | number,
  timeoutMs = 30_000,
): Promise<T> {
  const accept =
    typeof acceptOrTimeoutMs === 'function'
      ? acceptOrTimeoutMs
      : (value: T) => value !== undefined && value !== false;
  const timeout = typeof acceptOrTimeoutMs === 'number' ? acceptOrTimeoutMs : timeoutMs;
  return vi.waitFor(
    async () => {
      const value = await probe();
      if (!accept(value)) {
        const last = inspect(value, { depth: 3, breakLength: Number.POSITIVE_INFINITY });
        throw new Error(`timed out waiting for ${what}; last value: ${last.slice(0, 500)}`);
      }
      return value;
    },
    { timeout, interval: 20 },
  );
}

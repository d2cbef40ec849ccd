import { vi } from 'vitest';

/**
 * Polls `probe` until it gives a value (anything but undefined) and answers it; past `timeoutMs`
 * it throws, naming `what`.
 */
export function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  return vi.waitFor(
    async () => {
      const value = await probe();
      if (value === undefined) throw new Error(`timed out waiting for ${what}`);
      return value;
    },
    { timeout: timeoutMs, interval: 20 },
  );
}

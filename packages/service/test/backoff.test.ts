import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffMs } from '../src/backoff.js';

describe('backoff with jitter', () => {
  const policy = { baseMs: 100, maxMs: 5_000 };

  it('doubles per attempt up to the cap, less up to half of it', () => {
    expect(backoffMs(0, policy, () => 0)).toBe(50);
    expect(backoffMs(0, policy, () => 1)).toBe(100);
    expect(backoffMs(3, policy, () => 1)).toBe(800);
    expect(backoffMs(9, policy, () => 1)).toBe(5_000);
    expect(backoffMs(1_000, policy, () => 0)).toBe(2_500);
  });

  it('stays within [half, whole] of the capped delay for any attempt and draw', () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.double({ min: 0, max: 1, noNaN: true }), (attempt, draw) => {
        const capped = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
        const delay = backoffMs(attempt, policy, () => draw);
        return delay >= capped / 2 && delay <= capped;
      }),
    );
  });

  it('spreads the retries of callers that failed together', () => {
    const delays = new Set(Array.from({ length: 20 }, () => backoffMs(4, policy)));
    expect(delays.size).toBeGreaterThan(1);
  });
});

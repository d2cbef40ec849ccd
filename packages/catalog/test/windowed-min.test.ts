import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WindowedMin } from '../src/windowed-min.js';

describe('WindowedMin', () => {
  it('answers the least sample of the window, and forgets one the window has passed', () => {
    const rtt = new WindowedMin(30_000);
    expect(rtt.add(40, 0)).toBe(40);
    expect(rtt.add(1_040, 5_000)).toBe(40); // a retransmitted PING: ignored
    expect(rtt.add(45, 10_000)).toBe(40);
    // The 40 ms sample's slot has left the window; the 1,040 ms one shares it.
    expect(rtt.add(50, 31_000)).toBe(45);
    // A path that really grew longer shows once the window holds nothing shorter.
    expect(rtt.add(90, 45_000)).toBe(50);
    expect(rtt.add(90, 70_000)).toBe(90);
  });

  it('never answers less than a sample of the last three quarters of the window, nor more than the newest', () => {
    const windowMs = 1_000;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 600 }), fc.integer({ min: 0, max: 500 })), {
          minLength: 1,
          maxLength: 60,
        }),
        (steps) => {
          const rtt = new WindowedMin(windowMs);
          const taken: { atMs: number; value: number }[] = [];
          let nowMs = 0;
          for (const [gapMs, value] of steps) {
            nowMs += gapMs;
            taken.push({ atMs: nowMs, value });
            const answer = rtt.add(value, nowMs);
            const within = (spanMs: number) =>
              taken.filter((sample) => sample.atMs > nowMs - spanMs).map((sample) => sample.value);
            expect(answer).toBeLessThanOrEqual(value);
            expect(answer).toBeLessThanOrEqual(Math.min(...within((windowMs * 3) / 4)));
            expect(answer).toBeGreaterThanOrEqual(Math.min(...within(windowMs + 1)));
          }
        },
      ),
    );
  });
});

import { describe, expect, it } from 'vitest';
import { afterExit } from '../src/machines/restart-policy.js';

const failed = { code: 1, signal: null, oomKilled: false, requested: false };
const clean = { code: 0, signal: null, oomKilled: false, requested: false };
const killed = { code: null, signal: 'SIGSEGV' as const, oomKilled: false, requested: false };

// Fly's restart policies decide what happens after a machine's process exits on its own.
describe('afterExit', () => {
  it('restarts failures up to max_retries by default (on-failure), backing off', () => {
    // Backoff from 100 ms, doubling, capped at 5 s, less up to half of it (jitter).
    const delay = (after: ReturnType<typeof afterExit>) =>
      after.action === 'restart' ? after.delayMs : Number.NaN;
    expect(delay(afterExit({}, failed, 0))).toBeGreaterThanOrEqual(50);
    expect(delay(afterExit({}, failed, 0))).toBeLessThanOrEqual(100);
    expect(delay(afterExit({}, killed, 3))).toBeGreaterThanOrEqual(400);
    expect(delay(afterExit({}, killed, 3))).toBeLessThanOrEqual(800);
    expect(delay(afterExit({}, failed, 9))).toBeGreaterThanOrEqual(2_500);
    expect(delay(afterExit({}, failed, 9))).toBeLessThanOrEqual(5_000);
    expect(afterExit({}, failed, 10)).toEqual({ action: 'stay-stopped' });
    expect(afterExit({ restart: { policy: 'on-failure', max_retries: 1 } }, failed, 1)).toEqual({
      action: 'stay-stopped',
    });
    expect(afterExit({}, clean, 0)).toEqual({ action: 'stay-stopped' });
  });

  it('always restarts with `always`, never with `no`, and destroys with auto_destroy', () => {
    expect(afterExit({ restart: { policy: 'always' } }, clean, 50)).toMatchObject({
      action: 'restart',
    });
    expect(afterExit({ restart: { policy: 'no' } }, failed, 0)).toEqual({ action: 'stay-stopped' });
    expect(afterExit({ auto_destroy: true, restart: { policy: 'always' } }, clean, 0)).toEqual({
      action: 'destroy',
    });
  });
});

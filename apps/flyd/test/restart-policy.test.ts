import { describe, expect, it } from 'vitest';
import { afterExit } from '../src/machines/restart-policy.js';

const failed = { code: 1, signal: null, oomKilled: false, requested: false };
const clean = { code: 0, signal: null, oomKilled: false, requested: false };
const killed = { code: null, signal: 'SIGSEGV' as const, oomKilled: false, requested: false };

// Fly's restart policies decide what happens after a machine's process exits on its own.
describe('afterExit', () => {
  it('restarts failures up to max_retries by default (on-failure), backing off', () => {
    expect(afterExit({}, failed, 0)).toEqual({ action: 'restart', delayMs: 100 });
    expect(afterExit({}, killed, 3)).toEqual({ action: 'restart', delayMs: 800 });
    expect(afterExit({}, failed, 9)).toEqual({ action: 'restart', delayMs: 5_000 });
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

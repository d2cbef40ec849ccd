import { describe, expect, it, vi } from 'vitest';
import { Loader } from '../src/loader.js';

const hooks = { shed: () => undefined, timedOut: () => undefined, finished: () => undefined };

/** A load that ends when the test says so, or when its signal aborts. */
function controllable() {
  let finish!: () => void;
  let started = 0;
  const run = (signal: AbortSignal) => {
    started++;
    return new Promise<void>((resolve, reject) => {
      finish = resolve;
      signal.addEventListener('abort', () => setTimeout(() => reject(new Error('aborted')), 200));
    });
  };
  return { run, finish: () => finish(), started: () => started };
}

// The loader alone, with loads the test holds open: its bounds hold whatever the loads do.
describe('Loader', () => {
  it('shares one job between callers of the same key', async () => {
    const loader = new Loader({ concurrencyMax: 2, queueMax: 2, timeoutMs: 5_000 }, hooks);
    const load = controllable();
    const calls = Array.from({ length: 20 }, () => loader.load('app:web', 'web', load.run));
    expect(load.started()).toBe(1);
    load.finish();
    await Promise.all(calls);
    expect(loader.has('app:web')).toBe(false);
  });

  it('keeps the bound on running loads while a timed-out load is still being aborted', async () => {
    const loader = new Loader({ concurrencyMax: 1, queueMax: 1, timeoutMs: 50 }, hooks);
    const first = controllable();
    const second = controllable();
    const late = loader.load('app:a', 'a', first.run);
    const queued = loader.load('app:b', 'b', second.run);
    await expect(loader.load('app:c', 'c', controllable().run)).rejects.toMatchObject({
      code: 'CATALOG_ERR_LOAD_SHED',
    });
    await expect(late).rejects.toMatchObject({ code: 'CATALOG_ERR_LOAD_TIMEOUT', app: 'a' });
    await expect(queued).rejects.toMatchObject({ code: 'CATALOG_ERR_LOAD_TIMEOUT', app: 'b' });
    // 'a' was aborted but has not settled yet: its slot is still taken
    expect(loader.running).toBe(1);
    expect(second.started()).toBe(0); // 'b' timed out in the queue and never ran
    await vi.waitFor(() => expect(loader.running).toBe(0)); // once its abort settles
  });

  it('turns a failed load into CATALOG_ERR_LOAD_FAILED and lets the next caller try again', async () => {
    const loader = new Loader({ concurrencyMax: 1, queueMax: 0, timeoutMs: 1_000 }, hooks);
    await expect(
      loader.load('app:x', 'x', () => Promise.reject(new Error('agent said no'))),
    ).rejects.toMatchObject({ code: 'CATALOG_ERR_LOAD_FAILED', message: /agent said no/ });
    await expect(loader.load('app:x', 'x', () => Promise.resolve())).resolves.toBeUndefined();
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LockError, RwLock } from '../src/index.js';

// The promise shell around LockCore, under fast-check's scheduler: whatever order grants,
// releases and cancellations resolve in, the lock never lets a writer in with anyone else, every
// request settles once, and the lock ends free.
describe('RwLock under any scheduling', () => {
  it('keeps mutual exclusion and settles every request', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.record({ mode: fc.constantFrom('read', 'write'), cancel: fc.boolean() }), {
          minLength: 1,
          maxLength: 8,
        }),
        async (scheduler, requests) => {
          const lock = new RwLock({ name: 'prop', writeTimeoutMs: 60_000 });
          let readers = 0;
          let writers = 0;
          const settled = requests.map(async ({ mode, cancel }, index) => {
            const controller = new AbortController();
            if (cancel)
              void scheduler
                .schedule(Promise.resolve(`cancel ${index}`))
                .then(() => controller.abort());
            await scheduler.schedule(Promise.resolve(`request ${index}`));
            const critical = async () => {
              if (mode === 'write') writers++;
              else readers++;
              expect(writers).toBeLessThanOrEqual(1);
              expect(writers === 0 || readers === 0).toBe(true);
              await scheduler.schedule(Promise.resolve(`release ${index}`));
              if (mode === 'write') writers--;
              else readers--;
              return 'done';
            };
            const run =
              mode === 'write'
                ? lock.write(`w${index}`, critical, { signal: controller.signal })
                : lock.read(`r${index}`, critical, { signal: controller.signal });
            return run.catch((error: unknown) => {
              expect(error).toBeInstanceOf(LockError);
              expect((error as LockError).code).toBe('LOCK_ERR_CANCELLED');
              return 'cancelled';
            });
          });
          // A grant reaches its closure a few promise hops later than the task that caused it,
          // so drain until a macrotask turn finds nothing new scheduled.
          do {
            await scheduler.waitAll();
            await new Promise((resolve) => setImmediate(resolve));
          } while (scheduler.count() > 0);
          const outcomes = await Promise.race([
            Promise.all(settled),
            new Promise<string[]>((resolve) =>
              setTimeout(() => resolve(['a request never settled']), 1_000),
            ),
          ]);
          expect(outcomes.every((outcome) => outcome === 'done' || outcome === 'cancelled')).toBe(
            true,
          );
          expect(lock.snapshot()).toMatchObject({ holders: [], queued: [] });
        },
      ),
      { numRuns: 300 },
    );
  });
});

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

describe('RwLock regressions', () => {
  // A waiter behind the head that times out leaves the head in place and nobody stuck.
  it('times out a waiter that is not at the head of the queue', async () => {
    const lock = new RwLock({ name: 't' });
    const gate = deferred();
    const holder = lock.write('holder', () => gate.promise);
    const head = lock.write('head', () => 'head ran');
    const middle = lock.read('middle', () => 'never', { timeoutMs: 10 });
    const tail = lock.read('tail', () => 'tail ran');
    await expect(middle).rejects.toMatchObject({ code: 'LOCK_ERR_TIMEOUT' });
    expect(lock.snapshot().queued.map((waiter) => waiter.label)).toEqual(['head', 'tail']);
    gate.resolve();
    expect(await Promise.all([holder, head, tail])).toEqual([undefined, 'head ran', 'tail ran']);
  });

  // A timeout that fires in the same tick as the grant: exactly one of them wins, cleanly.
  it('settles a timeout racing a grant in the same tick exactly once', async () => {
    for (let round = 0; round < 20; round++) {
      const lock = new RwLock({ name: 't' });
      const holder = lock.write('holder', () => new Promise((resolve) => setTimeout(resolve, 5)));
      let ran = 0;
      const racer = lock
        .write('racer', () => ran++, { timeoutMs: 5 })
        .then(
          () => 'granted',
          (error: LockError) => error.code,
        );
      await holder;
      const outcome = await racer;
      expect(['granted', 'LOCK_ERR_TIMEOUT']).toContain(outcome);
      expect(ran).toBe(outcome === 'granted' ? 1 : 0);
      expect(lock.snapshot()).toMatchObject({ holders: [], queued: [] });
    }
  });

  // Aborting after the grant changes nothing: the closure runs to its end and releases.
  it('ignores a cancel that comes after the grant', async () => {
    const lock = new RwLock({ name: 't' });
    const controller = new AbortController();
    const value = await lock.write(
      'w',
      async () => {
        controller.abort();
        await new Promise((resolve) => setTimeout(resolve, 1));
        return 'finished';
      },
      { signal: controller.signal },
    );
    expect(value).toBe('finished');
    expect(lock.snapshot().holders).toEqual([]);
  });
});

import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { LockError, lockChannels, RwLock } from '../src/index.js';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('RwLock', () => {
  // Readers share the lock; a writer waits for them and returns its closure's value.
  it('lets readers share and gives writers exclusive access', async () => {
    const lock = new RwLock({ name: 't' });
    const gate = deferred();
    const order: string[] = [];
    const r1 = lock.read('r1', async () => {
      order.push('r1');
      await gate.promise;
    });
    const r2 = lock.read('r2', () => order.push('r2'));
    const w = lock.write('w', () => {
      order.push('w');
      return 42;
    });
    await tick();
    expect(order).toEqual(['r1', 'r2']);
    gate.resolve();
    expect(await w).toBe(42);
    await Promise.all([r1, r2]);
    expect(order).toEqual(['r1', 'r2', 'w']);
  });

  // FIFO with reader batching: a reader behind a queued writer waits for it.
  it('does not let later readers overtake a queued writer', async () => {
    const lock = new RwLock({ name: 't' });
    const gate = deferred();
    const order: string[] = [];
    const first = lock.read('first', () => gate.promise);
    const writer = lock.write('writer', () => order.push('writer'));
    const late = lock.read('late', () => order.push('late'));
    await tick();
    expect(lock.snapshot().queued.map((waiter) => waiter.label)).toEqual(['writer', 'late']);
    gate.resolve();
    await Promise.all([first, writer, late]);
    expect(order).toEqual(['writer', 'late']);
  });

  // The seed's lesson: reader, writer queued, reader queued; the writer times out; the second
  // reader must be granted at once, not left behind the writer that gave up.
  it('grants the reader behind a writer that timed out', async () => {
    const lock = new RwLock({ name: 't' });
    const gate = deferred();
    const holding = lock.read('holder', () => gate.promise);
    const writer = lock.write('writer', () => 'never', { timeoutMs: 20 });
    let lateRan = false;
    const late = lock.read('late', () => {
      lateRan = true;
    });
    await expect(writer).rejects.toMatchObject({ code: 'LOCK_ERR_TIMEOUT' });
    await late;
    expect(lateRan).toBe(true);
    gate.resolve();
    await holding;
    expect(lock.snapshot()).toMatchObject({ holders: [], queued: [] });
  });

  // Seed 001's `if let`: asking for the write lock while holding the read lock fails at once.
  it('refuses re-entry, synchronous and across await, naming both labels', async () => {
    const lock = new RwLock({ name: 'catalog' });
    await expect(lock.read('lookup', () => lock.write('load', () => 1))).rejects.toThrow(
      /"load" asks for write while its flow holds read as "lookup"/,
    );
    await expect(
      lock.write('apply', async () => {
        await tick();
        return lock.write('apply-again', () => 1);
      }),
    ).rejects.toMatchObject({ code: 'LOCK_ERR_REENTRANT' });
    // A task started inside a closure but run after its release is not a re-entry.
    let later: Promise<number> | undefined;
    await lock.read('spawner', () => {
      setTimeout(() => {
        later = lock.write('later', () => 7);
      }, 5);
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await later).toBe(7);
  });

  // Bounds: a full queue refuses at once; a cancelled wait leaves the queue.
  it('refuses past maxWaiters and honours cancellation', async () => {
    const lock = new RwLock({ name: 't', maxWaiters: 1 });
    const gate = deferred();
    const holder = lock.write('holder', () => gate.promise);
    const controller = new AbortController();
    const queued = lock.write('queued', () => 1, { signal: controller.signal });
    await expect(lock.write('third', () => 1)).rejects.toMatchObject({
      code: 'LOCK_ERR_QUEUE_FULL',
    });
    controller.abort();
    await expect(queued).rejects.toBeInstanceOf(LockError);
    gate.resolve();
    await holder;
    expect(await lock.write('after', () => 'free')).toBe('free');
  });

  // Snapshots show who holds the lock and the last writer, with labels and context.
  it('reports holders and the last writer', async () => {
    const lock = new RwLock({ name: 't' });
    await lock.write('apply', () => undefined, { context: { app: 'demo' } });
    await lock.read('route', () => {
      expect(lock.snapshot().holders).toMatchObject([{ mode: 'read', label: 'route' }]);
    });
    expect(lock.snapshot().lastWriter).toMatchObject({ label: 'apply', context: { app: 'demo' } });
  });

  // diagnostics_channel subscribers see grants, releases, give-ups and refused re-entries.
  it('publishes diagnostics events', async () => {
    const seen: string[] = [];
    const listeners = Object.entries(lockChannels).map(([name, channel]) => {
      const listener = (message: unknown) =>
        seen.push(`${name}:${(message as { label: string }).label}`);
      diagnosticsChannel.subscribe(channel.name, listener);
      return () => diagnosticsChannel.unsubscribe(channel.name, listener);
    });
    const lock = new RwLock({ name: 'diag' });
    await lock.write('w', () => lock.read('nested', () => 1)).catch(() => undefined);
    const gate = deferred();
    const holder = lock.write('holder', () => gate.promise);
    await lock.write('late', () => 1, { timeoutMs: 5 }).catch(() => undefined);
    gate.resolve();
    await holder;
    for (const stop of listeners) stop();
    expect(seen).toEqual([
      'granted:w',
      'reentry:nested',
      'released:w',
      'granted:holder',
      'abandoned:late',
      'released:holder',
    ]);
  });
});

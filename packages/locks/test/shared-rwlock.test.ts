import { isMainThread, Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SharedRwLock } from '../src/index.js';

interface Tally {
  writes: number;
  timeouts: number;
  tornReads: number;
}

function runWorkers(
  lock: SharedRwLock,
  data: SharedArrayBuffer,
  count: number,
  options: { iterations: number; writeShare: number; holdSpins: number },
) {
  const startBuffer = new SharedArrayBuffer(4);
  return Promise.all(
    Array.from(
      { length: count },
      (_, index) =>
        new Promise<Tally>((resolve, reject) => {
          const worker = new Worker(new URL('./fixtures/shared-worker.mjs', import.meta.url), {
            workerData: {
              lockBuffer: lock.buffer,
              dataBuffer: data,
              startBuffer,
              workers: count,
              seed: 7 + index * 7919,
              ...options,
            },
          });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
}

// Several worker threads hammer one SharedRwLock with reads and timed writes: the counter
// written under the write lock is exact, no read sees a half-done write, and the lock word
// ends at zero however the timeouts raced the wake-ups.
describe('SharedRwLock across worker threads', () => {
  it('keeps a shared counter exact and ends with the lock word at zero', async () => {
    const lock = new SharedRwLock();
    const data = new SharedArrayBuffer(8);
    const tallies = await runWorkers(lock, data, 4, {
      iterations: 20_000,
      writeShare: 0.3,
      holdSpins: 50,
    });
    const writes = tallies.reduce((sum, tally) => sum + tally.writes, 0);
    expect(new Int32Array(data)[0]).toBe(writes);
    expect(tallies.reduce((sum, tally) => sum + tally.tornReads, 0)).toBe(0);
    expect(lock.word).toBe(0);
  });

  it('survives writers timing out exactly as long readers leave (parking_lot #465)', async () => {
    const lock = new SharedRwLock();
    const data = new SharedArrayBuffer(8);
    // Long holds against 0-2 ms write timeouts: most writes time out while a reader is leaving.
    const tallies = await runWorkers(lock, data, 3, {
      iterations: 3_000,
      writeShare: 0.5,
      holdSpins: 20_000,
    });
    expect(tallies.reduce((sum, tally) => sum + tally.timeouts, 0)).toBeGreaterThan(0);
    expect(new Int32Array(data)[0]).toBe(tallies.reduce((sum, tally) => sum + tally.writes, 0));
    expect(lock.word).toBe(0);
  });

  it('lets the main thread take it without blocking', async () => {
    const lock = new SharedRwLock();
    const order: string[] = [];
    const reading = lock.readAsync(async () => {
      order.push('read');
      await new Promise((resolve) => setTimeout(resolve, 20));
    });
    const writing = lock.writeAsync(() => order.push('write'), 1_000);
    await expect(lock.writeAsync(() => 'late', 5)).rejects.toMatchObject({
      code: 'LOCK_ERR_TIMEOUT',
    });
    await Promise.all([reading, writing]);
    expect(order).toEqual(['read', 'write']);
    expect(lock.word).toBe(0);
  });
});

// Seed 001's deadlock in the lock built to prevent it: a thread holding the read lock that asks
// for the write lock sets the writer bit and waits for its own read forever, and every thread's
// reads then block behind the writer bit. Re-entry is refused per thread, at once.
describe('SharedRwLock re-entry', () => {
  it('is refused on a worker thread, however the thread holds the lock', {
    timeout: 15_000,
  }, async () => {
    const lock = new SharedRwLock();
    const worker = new Worker(new URL('./fixtures/shared-reentry.mjs', import.meta.url), {
      workerData: { lockBuffer: lock.buffer },
    });
    const report = await Promise.race([
      new Promise<{ outcomes: Record<string, string>; word: number }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      }),
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 10_000)),
    ]);
    await worker.terminate();
    expect(report).not.toBe('hung');
    if (report === 'hung') return;
    expect(report.outcomes).toEqual({
      'read then write': 'LOCK_ERR_REENTRANT',
      'read then write with a timeout': 'LOCK_ERR_REENTRANT',
      'read then tryWriteFor': 'LOCK_ERR_REENTRANT',
      'write then read': 'LOCK_ERR_REENTRANT',
      'write then write': 'LOCK_ERR_REENTRANT',
      'read then read': 'LOCK_ERR_REENTRANT',
      'read then write through another object': 'LOCK_ERR_REENTRANT',
      'readAsync then write': 'LOCK_ERR_REENTRANT',
      'a plain read afterwards': 'ran',
    });
    expect(report.word).toBe(0);
    expect(lock.word).toBe(0);
  });

  it('is refused within one async flow on the main thread', async () => {
    const lock = new SharedRwLock();
    await expect(lock.readAsync(() => lock.writeAsync(() => 1))).rejects.toMatchObject({
      code: 'LOCK_ERR_REENTRANT',
    });
    await expect(
      lock.writeAsync(async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        return lock.readAsync(() => 1);
      }, 1_000),
    ).rejects.toMatchObject({ code: 'LOCK_ERR_REENTRANT' });
    // Another flow is no re-entry: it waits for the first to finish.
    const order: string[] = [];
    const reading = lock.readAsync(async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      order.push('read');
    });
    const writing = lock.writeAsync(() => order.push('other flow wrote'), 1_000);
    await Promise.all([reading, writing]);
    expect(order).toEqual(['read', 'other flow wrote']);
    expect(lock.word).toBe(0);
  });

  // The main thread must not block: a read there would stop its event loop for as long as a
  // worker writes, and with no timeout possibly forever.
  it('refuses a blocking read, and a write without a timeout, on the main thread', () => {
    expect(isMainThread).toBe(true); // vitest's default pool runs tests in child processes
    const lock = new SharedRwLock();
    expect(() => lock.read(() => 1)).toThrow(
      expect.objectContaining({ code: 'LOCK_ERR_WOULD_BLOCK' }),
    );
    expect(() => lock.write(() => 1)).toThrow(
      expect.objectContaining({ code: 'LOCK_ERR_WOULD_BLOCK' }),
    );
    expect(lock.write(() => 'bounded', 10)).toBe('bounded');
    expect(lock.tryWriteFor(0, () => 'tried')).toEqual({ ok: true, value: 'tried' });
    for (const timeoutMs of [Number.NaN, -1]) {
      expect(() => lock.write(() => 1, timeoutMs)).toThrow(
        expect.objectContaining({ code: 'LOCK_ERR_BAD_OPTION' }),
      );
    }
    expect(lock.word).toBe(0);
  });
});

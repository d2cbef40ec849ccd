import { Worker } from 'node:worker_threads';
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
  return Promise.all(
    Array.from(
      { length: count },
      (_, index) =>
        new Promise<Tally>((resolve, reject) => {
          const worker = new Worker(new URL('./fixtures/shared-worker.mjs', import.meta.url), {
            workerData: {
              lockBuffer: lock.buffer,
              dataBuffer: data,
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

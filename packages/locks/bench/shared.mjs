// SharedRwLock: sync acquisitions on one thread, and 2 worker threads contending 9:1.
import { Worker } from 'node:worker_threads';
import { SharedRwLock } from '../dist/index.js';

export async function measureShared(rounds) {
  const lock = new SharedRwLock();
  const median = (samples) => samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)];
  const time = (count, body) => {
    const samples = [];
    for (let round = 0; round <= rounds; round++) {
      const started = process.hrtime.bigint();
      body(count);
      if (round > 0) samples.push(Number(process.hrtime.bigint() - started) / count);
    }
    return median(samples);
  };
  let value = 0;
  const read = time(1_000_000, (count) => {
    for (let i = 0; i < count; i++) lock.read(() => value++);
  });
  const write = time(1_000_000, (count) => {
    for (let i = 0; i < count; i++) lock.write(() => value++);
  });
  const perWorker = 500_000;
  const samples = [];
  for (let round = 0; round < rounds; round++) {
    const data = new SharedArrayBuffer(4);
    const started = process.hrtime.bigint();
    await Promise.all(
      [0, 1].map(
        () =>
          new Promise((resolve, reject) => {
            const worker = new Worker(new URL('./shared-worker.mjs', import.meta.url), {
              workerData: { lockBuffer: lock.buffer, dataBuffer: data, operations: perWorker },
            });
            worker.once('message', resolve);
            worker.once('error', reject);
          }),
      ),
    );
    samples.push(Number(process.hrtime.bigint() - started) / (perWorker * 2));
  }
  return { read, write, contended: median(samples), word: lock.word };
}

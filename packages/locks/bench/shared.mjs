// SharedRwLock: sync acquisitions on one worker thread (the main thread must not block, so the
// lock refuses a blocking read there), async ones on the main thread, and 2 workers contending.
import { Worker } from 'node:worker_threads';
import { SharedRwLock } from '../dist/index.js';

function runWorker(workerData) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./shared-worker.mjs', import.meta.url), { workerData });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

export async function measureShared(rounds) {
  const lock = new SharedRwLock();
  const median = (samples) => samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)];
  const { read, write } = await runWorker({
    mode: 'uncontended',
    lockBuffer: lock.buffer,
    dataBuffer: new SharedArrayBuffer(4),
    operations: 1_000_000,
    rounds,
  });
  const asyncSamples = [];
  let value = 0;
  for (let round = 0; round <= rounds; round++) {
    const count = 100_000;
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) await lock.readAsync(() => value++);
    if (round > 0) asyncSamples.push(Number(process.hrtime.bigint() - started) / count);
  }
  const perWorker = 500_000;
  const samples = [];
  for (let round = 0; round < rounds; round++) {
    const data = new SharedArrayBuffer(4);
    const started = process.hrtime.bigint();
    await Promise.all(
      [0, 1].map(() =>
        runWorker({ lockBuffer: lock.buffer, dataBuffer: data, operations: perWorker }),
      ),
    );
    samples.push(Number(process.hrtime.bigint() - started) / (perWorker * 2));
  }
  return {
    read,
    write,
    readAsync: median(asyncSamples),
    contended: median(samples),
    word: lock.word,
  };
}

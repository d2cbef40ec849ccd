// Worker of the SharedRwLock benchmarks: `operations` sync acquisitions, 9 reads : 1 write, or
// (mode 'uncontended') timed loops of reads and of writes on a lock nobody else uses.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedRwLock } from '../dist/index.js';

const lock = new SharedRwLock(workerData.lockBuffer);
const data = new Int32Array(workerData.dataBuffer);
let sum = 0;
if (workerData.mode === 'uncontended') {
  const time = (body) => {
    const samples = [];
    for (let round = 0; round <= workerData.rounds; round++) {
      const started = process.hrtime.bigint();
      body(workerData.operations);
      if (round > 0)
        samples.push(Number(process.hrtime.bigint() - started) / workerData.operations);
    }
    return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)];
  };
  const read = time((count) => {
    for (let i = 0; i < count; i++) lock.read(() => (sum += data[0]));
  });
  const write = time((count) => {
    for (let i = 0; i < count; i++) lock.write(() => (data[0] += 1));
  });
  parentPort.postMessage({ read, write });
} else {
  for (let i = 0; i < workerData.operations; i++) {
    if (i % 10 === 0) lock.write(() => (data[0] += 1));
    else lock.read(() => (sum += data[0]));
  }
  parentPort.postMessage(sum);
}

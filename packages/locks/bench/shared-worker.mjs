// Worker of the SharedRwLock contended benchmark: `operations` sync acquisitions, 9 reads : 1 write.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedRwLock } from '../dist/index.js';

const lock = new SharedRwLock(workerData.lockBuffer);
const data = new Int32Array(workerData.dataBuffer);
let sum = 0;
for (let i = 0; i < workerData.operations; i++) {
  if (i % 10 === 0) lock.write(() => (data[0] += 1));
  else lock.read(() => (sum += data[0]));
}
parentPort.postMessage(sum);

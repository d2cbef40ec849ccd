// The locks under test, behind one closure-style shape so every scenario runs the same code.
import { Mutex } from 'async-mutex';
import { RWLock } from 'async-rwlock';
import AwaitLockModule from 'await-lock';
import { RwLock } from '../dist/index.js';

function ours(trackAsync) {
  const lock = new RwLock({ name: 'bench', writeTimeoutMs: 60_000, trackAsync });
  const context = { app: 'bench' };
  return {
    read: (fn) => lock.read('read', fn, { context }),
    write: (fn) => lock.write('write', fn, { context }),
  };
}

function exclusive(acquire, release) {
  return async (fn) => {
    await acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  };
}

export const subjects = {
  'RwLock (ours, ALS on)': () => ours(true),
  'RwLock (ours, ALS off)': () => ours(false),
  'async-mutex (Mutex)': () => {
    const mutex = new Mutex();
    return { read: (fn) => mutex.runExclusive(fn), write: (fn) => mutex.runExclusive(fn) };
  },
  'async-rwlock (RWLock)': () => {
    const lock = new RWLock();
    const unlock = () => lock.unlock();
    return {
      read: exclusive(() => lock.readLock(), unlock),
      write: exclusive(() => lock.writeLock(), unlock),
    };
  },
  'await-lock (AwaitLock)': () => {
    // await-lock is CommonJS with an `exports.default` class.
    const lock = new AwaitLockModule.default();
    const run = exclusive(
      () => lock.acquireAsync(),
      () => lock.release(),
    );
    return { read: run, write: run };
  },
};

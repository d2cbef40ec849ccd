import { describe, expect, it } from 'vitest';
import { flowStorage } from '../src/flow-storage.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The storage that carries a flow's holds skips Node's write of `undefined` onto every new
// promise; what getStore() answers must be exactly what a plain AsyncLocalStorage answers.
describe('flowStorage', () => {
  it('is the lean subclass on this Node.js, where the internal hook exists', () => {
    const major = Number(process.versions.node.split('.')[0]);
    if (major <= 22) expect(flowStorage().constructor.name).toBe('LeanStorage');
  });

  it('carries a store across await, timers and nested runs, and nothing outside', async () => {
    const storage = flowStorage<string>();
    const seen: (string | undefined)[] = [];
    const inner = storage.run('outer', async () => {
      seen.push(storage.getStore());
      await null;
      seen.push(storage.getStore());
      await sleep(1);
      seen.push(storage.getStore());
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          seen.push(storage.getStore());
          resolve();
        }),
      );
      await storage.run('nested', async () => {
        await sleep(1);
        seen.push(storage.getStore());
      });
      seen.push(storage.getStore());
    });
    const outside = (async () => {
      await sleep(1);
      return storage.getStore();
    })();
    await inner;
    expect(seen).toEqual(['outer', 'outer', 'outer', 'outer', 'nested', 'outer']);
    expect(await outside).toBeUndefined();
    expect(storage.getStore()).toBeUndefined();
  });

  it('does not let a store leak into promises made after its run ended', async () => {
    const storage = flowStorage<string>();
    let later: Promise<string | undefined> | undefined;
    storage.run('held', () => {
      later = sleep(1).then(() => storage.getStore()); // made inside: carries 'held'
    });
    const after = Promise.resolve().then(() => storage.getStore()); // made outside
    expect(await later).toBe('held');
    expect(await after).toBeUndefined();
  });
});

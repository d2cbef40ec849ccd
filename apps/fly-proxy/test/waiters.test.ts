import { describe, expect, it } from 'vitest';
import { Waiters } from '../src/waiters.js';

const errors = { full: () => new Error('full'), timedOut: () => new Error('late') };

// The bounded wait the machine pools and backhaul sessions share: FIFO, refused past its bound,
// each waiter with a deadline, and all of them failed at once when what they wait for goes.
describe('Waiters', () => {
  it('hands values to the longest waiter first and refuses past waitersMax', async () => {
    const waiters = new Waiters<string>({ waitTimeoutMs: 30_000, waitersMax: 2 }, errors);
    const first = waiters.wait();
    const second = waiters.wait();
    await expect(waiters.wait()).rejects.toThrow('full');
    waiters.take()?.resolve('a');
    waiters.take()?.resolve('b');
    expect(await Promise.all([first, second])).toEqual(['a', 'b']);
    expect(waiters.take()).toBeUndefined();
    expect(waiters.length).toBe(0);
  });

  it('rejects a waiter whose deadline passes and takes it off the queue', async () => {
    const waiters = new Waiters<string>({ waitTimeoutMs: 20, waitersMax: 1 }, errors);
    await expect(waiters.wait()).rejects.toThrow('late');
    expect(waiters.length).toBe(0);
    const next = waiters.wait(); // its slot is free again
    waiters.take()?.resolve('c');
    expect(await next).toBe('c');
  });

  it('fails every waiter at once, and a taken waiter no longer times out', async () => {
    const waiters = new Waiters<string>({ waitTimeoutMs: 20, waitersMax: 3 }, errors);
    const taken = waiters.wait();
    const left = [waiters.wait(), waiters.wait()];
    const waiter = waiters.take();
    waiters.rejectAll(new Error('gone'));
    for (const wait of left) await expect(wait).rejects.toThrow('gone');
    // settled well after its deadline would have passed, had take() not stopped it
    await expect(waiters.wait()).rejects.toThrow('late');
    waiter?.resolve('d');
    expect(await taken).toBe('d');
  });
});

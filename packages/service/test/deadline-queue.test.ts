import { describe, expect, it } from 'vitest';
import { DeadlineQueue } from '../src/deadline-queue.js';

const errors = {
  full: (waiting: number) => new Error(`full at ${waiting}`),
  timedOut: (ms: number) => new Error(`late after ${ms} ms`),
  aborted: () => new Error('cancelled'),
};

// The bounded wait fly-proxy's machine pools and backhaul sessions and the catalog's admission
// share: FIFO, refused past its bound, each waiter with a deadline (and a signal), and all of
// them failed at once when what they wait for goes.
describe('DeadlineQueue', () => {
  it('hands values to the longest waiter first and refuses past waitersMax', async () => {
    const queue = new DeadlineQueue<string>({ timeoutMs: 30_000, waitersMax: 2 }, errors);
    const first = queue.wait();
    const second = queue.wait();
    await expect(queue.wait()).rejects.toThrow('full at 2');
    queue.take()?.resolve('a');
    queue.take()?.resolve('b');
    expect(await Promise.all([first, second])).toEqual(['a', 'b']);
    expect(queue.take()).toBeUndefined();
    expect(queue.length).toBe(0);
  });

  it('rejects a waiter whose deadline passes and takes it off the queue', async () => {
    const queue = new DeadlineQueue<string>({ timeoutMs: 20, waitersMax: 1 }, errors);
    await expect(queue.wait()).rejects.toThrow('late after 20 ms');
    expect(queue.length).toBe(0);
    const next = queue.wait(); // its slot is free again
    queue.take()?.resolve('c');
    expect(await next).toBe('c');
  });

  it('takes a shorter deadline from the caller, and a signal that aborts', async () => {
    const queue = new DeadlineQueue<string>({ timeoutMs: 30_000, waitersMax: 3 }, errors);
    await expect(queue.wait(10)).rejects.toThrow('late after 10 ms');
    const controller = new AbortController();
    const waiting = queue.wait(undefined, controller.signal);
    controller.abort();
    await expect(waiting).rejects.toThrow('cancelled');
    expect(queue.length).toBe(0);
    await expect(queue.wait(undefined, controller.signal)).rejects.toThrow('cancelled');
    // Without an error of its own for it, the signal's reason.
    const bare = new DeadlineQueue<string>(
      { timeoutMs: 30_000, waitersMax: 1 },
      { full: errors.full, timedOut: errors.timedOut },
    );
    await expect(bare.wait(undefined, AbortSignal.abort(new Error('gone away')))).rejects.toThrow(
      'gone away',
    );
  });

  it('fails every waiter at once, and a taken waiter no longer times out', async () => {
    const queue = new DeadlineQueue<string>({ timeoutMs: 20, waitersMax: 3 }, errors);
    const taken = queue.wait();
    const left = [queue.wait(), queue.wait()];
    const waiter = queue.take();
    queue.rejectAll(new Error('gone'));
    for (const wait of left) await expect(wait).rejects.toThrow('gone');
    // settled well after its deadline would have passed, had take() not stopped it
    await expect(queue.wait()).rejects.toThrow('late');
    waiter?.resolve('d');
    expect(await taken).toBe('d');
  });
});

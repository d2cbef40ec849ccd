import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { IdleConnections, UpstreamConnection } from '../src/http1/upstream-pools.js';

const owner = { idle: () => {}, closed: () => {} };
const connection = () => new UpstreamConnection(new PassThrough(), owner);

// The idle stack the machine pools and the backhaul sessions share.
describe('IdleConnections', () => {
  it('hands out the most recent, sweeps the oldest past the timeout, forgets closed ones', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const idle = new IdleConnections();
      const [a, b, c] = [connection(), connection(), connection()];
      idle.park(a);
      vi.advanceTimersByTime(100);
      idle.park(b);
      vi.advanceTimersByTime(100);
      idle.park(c);
      expect(idle.take()).toBe(c); // the least likely to be stale
      idle.park(c);
      idle.sweep(Date.now(), 150); // a has been idle 200 ms, b 100 ms
      expect([a, b, c].map((each) => each.socket.destroyed)).toEqual([true, false, false]);
      idle.forget(b);
      expect(idle.take()).toBe(c);
      expect(idle.take()).toBeUndefined();
      idle.park(b);
      idle.park(c);
      idle.closeOldest();
      expect([b, c].map((each) => each.socket.destroyed)).toEqual([true, false]);
      idle.closeAll();
      expect(c.socket.destroyed).toBe(true);
      expect(idle.take()).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });
});

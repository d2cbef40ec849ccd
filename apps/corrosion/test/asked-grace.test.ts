import { describe, expect, it } from 'vitest';
import { askedGraceMs, graceMs } from '../src/replication/asked-grace.js';

describe('the grace a node asks of its peers in a sync', () => {
  it('is nothing beyond the default while the node keeps up', () => {
    expect(askedGraceMs(0, 0)).toBe(0);
  });

  it('covers twice its apply lag, up to a few seconds', () => {
    expect(askedGraceMs(400, 0)).toBe(800);
    expect(askedGraceMs(10_000, 0)).toBe(3_000);
  });

  it('covers what waits unread in its socket, however old, up to a bound', () => {
    // Unread for 5 s: the versions in there are up to 5 s old plus their flight; a peer that
    // sent them again would double the work of a node already behind.
    expect(askedGraceMs(0, 5_000)).toBe(5_000 + graceMs);
    expect(askedGraceMs(10_000, 5_000)).toBe(5_000 + graceMs);
    expect(askedGraceMs(400, 100)).toBe(100 + graceMs);
    expect(askedGraceMs(0, 120_000)).toBe(30_000);
  });
});

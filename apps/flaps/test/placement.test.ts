import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import { PlacementTracker, placeMachine, type WorkerHost } from '../src/placement.js';
import { regionsOf } from '../src/regions.js';

const host = (id: string, region: string, memoryFreeMb = 4096): WorkerHost => ({
  id,
  region,
  flyd_addr: `http://${id}`,
  machine_count: 0,
  cpus: 8,
  cpus_reserved: 0,
  memory_mb: 8192,
  memory_mb_reserved: 8192 - memoryFreeMb,
});
const counts = (entries: Record<string, number> = {}) => new Map(Object.entries(entries));

// Placement spreads an app's machines over workers and fails clearly when a region is full
// (seed 002: placement that piles onto the emptiest-looking host took a region down).
describe('placeMachine', () => {
  it('prefers the fewest machines of the same app, then the most free memory, then chance', () => {
    const hosts = [
      host('a', 'ams'),
      host('b', 'ams', 1024),
      host('c', 'ams', 8000),
      host('d', 'ord'),
    ];
    const sameGroup = counts({ a: 0, b: 0, c: 2 });
    expect(placeMachine(hosts, { region: 'ams', memoryMb: 256, sameGroup }).id).toBe('a');
    const tied = [host('a', 'ams'), host('b', 'ams')];
    expect(
      placeMachine(tied, { region: 'ams', memoryMb: 256, sameGroup: counts() }, () => 0).id,
    ).toBe('a');
    expect(
      placeMachine(tied, { region: 'ams', memoryMb: 256, sameGroup: counts() }, () => 0.99).id,
    ).toBe('b');
    expect(placeMachine(hosts, { region: 'any', memoryMb: 256, sameGroup }).id).toMatch(/^[ad]$/);
  });

  it('understands region expressions: codes, lists, groups and any', () => {
    expect(regionsOf('iad')).toEqual(new Set(['iad']));
    expect(regionsOf('iad, dfw')).toEqual(new Set(['iad', 'dfw']));
    expect(regionsOf('lhr,eu')?.has('fra')).toBe(true);
    expect(regionsOf('any')).toBeUndefined();
    expect(regionsOf(undefined)).toBeUndefined();
    const hosts = [host('a', 'fra'), host('b', 'iad'), host('c', 'syd')];
    const placed = placeMachine(hosts, { region: 'lhr,eu', memoryMb: 256, sameGroup: counts() });
    expect(placed.id).toBe('a');
  });

  it('refuses a full region and names the nearest regions with room', () => {
    const hosts = [host('a', 'ams', 100), host('b', 'syd'), host('c', 'fra'), host('d', 'iad')];
    expect(() =>
      placeMachine(hosts, { region: 'ams', memoryMb: 256, sameGroup: counts() }),
    ).toThrow(
      /insufficient_capacity: no worker in region ams.*nearest regions with room: fra, iad, syd/,
    );
    expect(() => placeMachine([], { memoryMb: 256, sameGroup: counts() })).toThrow(
      /no region has room/,
    );
  });
});

describe('PlacementTracker', () => {
  it('spreads a burst of creates that all read the same counts', () => {
    const tracker = new PlacementTracker();
    const hosts = [host('a', 'ams'), host('b', 'ams'), host('c', 'ams')];
    const placed: string[] = [];
    for (let i = 0; i < 9; i++) {
      const view = tracker.view('web', hosts, counts());
      const chosen = placeMachine(view.hosts, {
        region: 'ams',
        memoryMb: 256,
        sameGroup: view.sameGroup,
      });
      tracker.reserve('web', chosen.id, 256);
      placed.push(chosen.id);
    }
    for (const id of ['a', 'b', 'c']) expect(placed.filter((p) => p === id)).toHaveLength(3);
    expect(tracker.pending()).toEqual([{ placement_id: 'web', in_flight: 9 }]);
  });

  it('keeps its own counts while busy, takes a failed create back, and counts memory in flight', () => {
    const tracker = new PlacementTracker();
    const hosts = [host('a', 'ams')];
    tracker.view('web', hosts, counts({ a: 5 }));
    const ok = tracker.reserve('web', 'a', 256);
    const failed = tracker.reserve('web', 'a', 256);
    // corrosion's (stale) answer is not taken while the group is busy.
    expect(tracker.view('web', hosts, counts({ a: 0 })).sameGroup.get('a')).toBe(7);
    failed(false);
    ok(true);
    expect(tracker.view('web', hosts, counts({ a: 6 })).sameGroup.get('a')).toBe(6);
    // Another group is counted apart, but the memory of creates in flight is shared.
    tracker.view('api', hosts, counts());
    const other = tracker.reserve('api', 'a', 512);
    const view = tracker.view('web', hosts, counts());
    expect(view.sameGroup.get('a')).toBe(6);
    expect(present(view.hosts[0], 'view.hosts[0]').memory_mb_reserved).toBe(4096 + 512);
    other(true);
  });
});

// The tracker remembers only what placement needs: groups with placements in flight or in the
// last quiet period, never dry runs, and never more than its bound.
describe('PlacementTracker bounds', () => {
  const hosts = [host('a', 'ams'), host('b', 'ams')];

  it('keeps no group for a dry run', () => {
    const tracker = new PlacementTracker();
    for (let i = 0; i < 100; i++) tracker.view(`dry-${i}`, hosts, counts(), { dryRun: true });
    expect(tracker.size).toBe(0);
  });

  it('drops groups once quiet, keeps busy ones', () => {
    let now = 1_000_000;
    const tracker = new PlacementTracker(10_000, () => now);
    tracker.view('done', hosts, counts());
    tracker.reserve('done', 'a', 256)(true);
    tracker.view('busy', hosts, counts());
    const end = tracker.reserve('busy', 'b', 256);
    now += 60_000;
    tracker.view('next', hosts, counts());
    expect(tracker.size).toBe(2); // 'busy' (in flight) and 'next'
    expect(tracker.pending()).toEqual([{ placement_id: 'busy', in_flight: 1 }]);
    end(true);
  });

  it('refuses a new group past its bound while every kept one is busy, and takes it once one is quiet', () => {
    let now = 1_000_000;
    const tracker = new PlacementTracker(2, () => now);
    const ends = ['one', 'two'].map((id) => {
      tracker.view(id, hosts, counts());
      return tracker.reserve(id, 'a', 256);
    });
    expect(() => tracker.view('three', hosts, counts())).toThrow(
      expect.objectContaining({ code: 'FLAPS_ERR_OVERLOADED', statusCode: 503 }),
    );
    present(ends[0], 'ends[0]')(true);
    now += 60_000;
    tracker.view('three', hosts, counts());
    expect(tracker.size).toBe(2);
  });
});

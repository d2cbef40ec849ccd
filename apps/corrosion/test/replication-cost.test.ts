import { afterEach, describe, expect, it, vi } from 'vitest';
import { applyChangesets } from '../src/replication/apply.js';
import { Broadcaster } from '../src/replication/broadcaster.js';
import { type Changeset, decodeBroadcast } from '../src/replication/codec.js';
import { changesetsFor, syncState } from '../src/replication/sync-needs.js';
import type { Subscriber } from '../src/subscription.js';
import { Updates } from '../src/updates.js';
import { allChangesets, exec, openStore } from './crdt-helpers.js';

// The work each write costs a cluster, kept from growing back: these are the per-message costs
// the 20-agent convergence benchmark found (bench/convergence.mjs reports CPU per write).

const members = (count: number) =>
  Array.from({ length: count }, (_, at) => ({ addr: `127.0.0.1:${7000 + at}` }));

function broadcaster(peerCount: number, localSlotMs = 0, sendsMax = 1) {
  const sends: { addrs: string[]; bytes: number; changesets: number }[] = [];
  const peers = members(peerCount);
  const asked = { random: 0 };
  const queue = new Broadcaster({
    peers: {
      nearest: (count) => peers.slice(0, count),
      random: (count) => {
        asked.random++;
        return peers.slice(0, count);
      },
      activeCount: () => peers.length,
    },
    send: (addrs, body) =>
      sends.push({ addrs, bytes: body.length, changesets: decodeBroadcast(body).length }),
    datagramBytes: 1400,
    nearest: 3,
    random: 3,
    relay: 3,
    directMax: 40,
    sendsMax,
    resendMs: 500,
    queueMax: 100,
    bytesPerSecond: 1 << 30,
    tickMs: 60_000,
    localSlotMs,
  });
  return { queue, sends, asked };
}

function someChangesets(id = 'm1'): Changeset[] {
  const store = openStore();
  exec(store, "INSERT INTO machines (id, state) VALUES (?, 'started')", [id]);
  const sets = allChangesets(store);
  store.close();
  return sets;
}

describe('what a write costs the cluster', () => {
  const queues: Broadcaster[] = [];
  afterEach(() => {
    for (const queue of queues.splice(0)) queue.close();
  });

  it('a local change in a direct cluster is one datagram, encoded once for every member', () => {
    const { queue, sends } = broadcaster(19);
    queues.push(queue);
    queue.enqueue(someChangesets(), true);
    expect(sends).toHaveLength(1);
    expect(sends[0]?.addrs).toHaveLength(19);
  });

  it('commits of one slot share one datagram, sent once the slot ends', async () => {
    const { queue, sends } = broadcaster(19, 10);
    queues.push(queue);
    for (const id of ['m1', 'm2', 'm3']) queue.enqueue(someChangesets(id), true);
    expect(sends).toHaveLength(0);
    await vi.waitFor(() => expect(sends).toHaveLength(1), { timeout: 10_000 });
    expect(sends[0]).toMatchObject({ changesets: 3 });
    expect(sends[0]?.addrs).toHaveLength(19);
  });

  it('a slot of commits asks the membership for its members once, not once per commit', async () => {
    const { queue, sends, asked } = broadcaster(19, 10);
    queues.push(queue);
    for (const id of ['m1', 'm2', 'm3', 'm4']) queue.enqueue(someChangesets(id), true);
    await vi.waitFor(() => expect(sends).toHaveLength(1), { timeout: 10_000 });
    expect(sends[0]).toMatchObject({ changesets: 4 });
    expect(asked.random).toBe(1);
  });

  it("sends at the slot's end on the wall clock: agents that commit apart send together", () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      vi.setSystemTime(1_000_003);
      const first = broadcaster(19, 20);
      const second = broadcaster(19, 20);
      queues.push(first.queue, second.queue);
      first.queue.enqueue(someChangesets('m1'), true);
      vi.advanceTimersByTime(9); // the second agent commits 9 ms later, in the same slot
      second.queue.enqueue(someChangesets('m2'), true);
      vi.advanceTimersByTime(7); // 1_000_019: the slot has not ended
      expect([first.sends, second.sends]).toEqual([[], []]);
      vi.advanceTimersByTime(1); // 1_000_020
      expect([first.sends.length, second.sends.length]).toEqual([1, 1]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a direct cluster sends a local change once: no re-sends queued after it', () => {
    const { queue, sends } = broadcaster(19, 0, 3);
    queues.push(queue);
    queue.enqueue(someChangesets(), true);
    expect(sends).toHaveLength(1);
    expect(queue.length).toBe(0);
  });

  it('past directMax, a local change stays queued for its re-sends', () => {
    const { queue, sends } = broadcaster(50, 0, 3);
    queues.push(queue);
    queue.enqueue(someChangesets(), true);
    // The test's nearest and random members are the same three.
    expect(sends.flatMap((send) => send.addrs)).toHaveLength(3);
    expect(queue.length).toBe(1);
  });

  it('holds a timer only while something waits: none idle, none after a direct send', () => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    try {
      const { queue, sends } = broadcaster(19, 10, 3);
      queues.push(queue);
      expect(vi.getTimerCount()).toBe(0);
      queue.enqueue(someChangesets(), true);
      expect(vi.getTimerCount()).toBe(1); // the slot's end
      vi.advanceTimersByTime(10);
      expect(sends).toHaveLength(1);
      expect(vi.getTimerCount()).toBe(0);
      // Past directMax a local change is re-sent: a timer waits for its due time, then none.
      const { queue: large } = broadcaster(50, 0, 2);
      queues.push(large);
      large.enqueue(someChangesets(), true);
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(500);
      expect(large.length).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a direct cluster relays nothing: every member heard the origin', () => {
    const { queue, sends } = broadcaster(19);
    queues.push(queue);
    queue.enqueue(someChangesets(), false);
    queue.flush();
    expect(queue.length).toBe(0);
    expect(sends).toHaveLength(0);
  });

  it('past directMax, changes new to a node are relayed to a few members', () => {
    const { queue, sends } = broadcaster(50);
    queues.push(queue);
    queue.enqueue(someChangesets(), false);
    queue.flush();
    expect(sends.flatMap((send) => send.addrs)).toHaveLength(3);
  });

  it('sync reads no changes of versions younger than its grace period', () => {
    const store = openStore();
    for (let i = 0; i < 5; i++) exec(store, 'INSERT INTO machines (id) VALUES (?)', [`m${i}`]);
    const read = vi.spyOn(store.crdt, 'changesOf');
    expect([...changesetsFor(store, [], 1 << 20, 100, 60_000)]).toHaveLength(0);
    expect(read).not.toHaveBeenCalled();
    expect([...changesetsFor(store, syncState(openStore()), 1 << 20, 100, 0)]).toHaveLength(5);
    expect(read).toHaveBeenCalledTimes(5);
    store.close();
  });

  it('sync sends no version the peer holds in its apply queue, and still fills its gaps', () => {
    const origin = openStore();
    for (let i = 1; i <= 8; i++) exec(origin, 'INSERT INTO machines (id) VALUES (?)', [`m${i}`]);
    const sets = allChangesets(origin);
    const peer = openStore();
    // The peer merged versions 1 and 6 (2..5 became a gap) and holds 3, 4 and 8 in its queue.
    applyChangesets(
      peer,
      [sets[0], sets[5]].filter((set) => set !== undefined),
    );
    const queued = [sets[2], sets[3], sets[7]].filter((set) => set !== undefined);
    const [state] = syncState(peer, queued);
    expect(state).toMatchObject({
      head: 8,
      gaps: [
        [2, 2],
        [5, 5],
        [7, 7],
      ],
    });
    const served = [...changesetsFor(origin, syncState(peer, queued), 1 << 20, 100, 0)];
    expect(served.map((set) => set.version)).toEqual([7, 5, 2]);
    origin.close();
    peer.close();
  });

  it('an apply batch reaches each updates follower as one write', () => {
    const updates = new Updates(() => ['machines']);
    const writes: string[] = [];
    const follower: Subscriber = (text) => {
      writes.push(text);
      return true;
    };
    updates.follow('machines', follower);
    updates.notify([
      { table: 'machines', pk: ['a'], deleted: false },
      { table: 'machines', pk: ['b'], deleted: true },
      { table: 'other', pk: ['c'], deleted: false },
    ]);
    expect(writes).toEqual(['{"notify":["update",["a"]]}\n{"notify":["delete",["b"]]}\n']);
  });
});

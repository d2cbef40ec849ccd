import { present } from '@fleet/service/invariant';
import { afterEach, describe, expect, it } from 'vitest';
import { applyChangesets } from '../src/replication/apply.js';
import { eventually } from './cluster.js';
import { allChangesets, clocks, exec, openStore } from './crdt-helpers.js';
import { type Replica, replica } from './in-process.js';

const replicas: Replica[] = [];

/** The member at `index`, which the test made. */
function nth<T>(list: T[], index: number): T {
  return present(list[index], `member ${index}`);
}

afterEach(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.stop()));
});

async function cluster(size: number): Promise<Replica[]> {
  const first = await replica([]);
  replicas.push(first);
  for (let i = 1; i < size; i++) {
    replicas.push(await replica([first.replicator.gossipAddr]));
  }
  await eventually(async () => {
    for (const r of replicas) {
      expect(r.replicator.stats().members.filter((m) => m.state === 'alive')).toHaveLength(
        size - 1,
      );
    }
  });
  return [...replicas];
}

function cut(side: Replica[], other: Replica[]): void {
  for (const r of side)
    for (const o of other) r.replicator.transport.blocked.add(o.replicator.gossipAddr);
}

function heal(all: Replica[]): void {
  for (const r of all) r.replicator.transport.blocked.clear();
}

const upsert =
  'INSERT INTO machines (id, state, n) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, n = excluded.n';

describe('partition and heal', () => {
  it('five nodes split 3/2, written on both sides, converge identically with no gaps', async () => {
    const all = await cluster(5);
    const [left, right] = [all.slice(0, 3), all.slice(3)];
    cut(left, right);
    cut(right, left);
    // Long enough for each side to declare the other down: healing must undo that too.
    await eventually(async () => {
      const members = nth(left, 0).replicator.stats().members;
      expect(members.filter((m) => m.state === 'down')).toHaveLength(2);
    });
    for (let i = 0; i < 30; i++) {
      nth(left, i % 3).write(upsert, [`m${i % 10}`, 'left', i]);
      nth(right, i % 2).write(upsert, [`m${(i + 5) % 12}`, 'right', i]);
    }
    nth(right, 0).write('DELETE FROM machines WHERE id = ?', ['m6']);
    // Each side converges on its own first.
    await eventually(async () => {
      expect(nth(left, 1).rows()).toEqual(nth(left, 0).rows());
      expect(nth(right, 1).rows()).toEqual(nth(right, 0).rows());
    });
    expect(nth(left, 0).rows()).not.toEqual(nth(right, 0).rows());
    heal(all);
    await eventually(async () => {
      const expected = nth(all, 0).rows();
      for (const r of all) {
        expect(r.rows()).toEqual(expected);
        expect(clocks(r.store)).toEqual(clocks(nth(all, 0).store));
        expect(r.store.bookkeeping.gapCount()).toBe(0);
        expect(r.replicator.stats().members.filter((m) => m.state === 'alive')).toHaveLength(4);
      }
    }, 30_000);
  });

  it('a late joiner catches up on 100 transactions purely through sync', async () => {
    const a = nth(await cluster(1), 0);
    for (let i = 0; i < 100; i++) a.write(upsert, [`m${i}`, 'started', i]);
    const late = await replica([a.replicator.gossipAddr]);
    replicas.push(late);
    await eventually(async () => {
      expect(late.rows()).toHaveLength(100);
      expect(late.rows()).toEqual(a.rows());
      expect(late.store.bookkeeping.gapCount()).toBe(0);
    });
    expect(late.replicator.stats().sync_rounds).toBeGreaterThan(0);
  });
});

describe('sync pacing', () => {
  it('backs rounds off to 4 intervals while they find nothing, and comes back for a gap', async () => {
    const [first] = await cluster(2);
    const node = present(first, 'the first member');
    await eventually(async () => expect(node.replicator.stats().sync_delay_ms).toBe(800));
    // A gap nobody can fill: version 2 of an actor whose version 1 no member has.
    const origin = openStore();
    try {
      for (const id of ['a', 'b']) exec(origin, 'INSERT INTO machines (id) VALUES (?)', [id]);
      applyChangesets(
        node.store,
        allChangesets(origin).filter((set) => set.version === 2),
      );
    } finally {
      origin.close();
    }
    expect(node.store.bookkeeping.gapCount()).toBe(1);
    await eventually(async () => expect(node.replicator.stats().sync_delay_ms).toBe(200));
  });
});

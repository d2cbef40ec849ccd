import { present } from '@fleet/service/invariant';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyChangesets } from '../src/replication/apply.js';
import type { Changeset } from '../src/replication/codec.js';
import { versionChangesets } from '../src/replication/serve.js';
import type { Store } from '../src/store.js';
import { clocks, openStore, rows } from './crdt-helpers.js';

type Op =
  | { kind: 'upsert'; site: number; id: number; state: string; n: number | null }
  | { kind: 'replace'; site: number; id: number; state: string }
  | { kind: 'rekey'; site: number; id: number; to: number }
  | { kind: 'update'; site: number; id: number; state: string }
  | { kind: 'delete'; site: number; id: number }
  | { kind: 'learn'; site: number; from: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('upsert' as const),
    site: fc.nat(2),
    id: fc.nat(3),
    state: fc.constantFrom('created', 'started', 'stopped', 'destroyed'),
    n: fc.option(fc.integer({ min: -3, max: 3 })),
  }),
  fc.record({
    kind: fc.constant('update' as const),
    site: fc.nat(2),
    id: fc.nat(3),
    state: fc.constantFrom('started', 'stopped', ''),
  }),
  // INSERT OR REPLACE of a live row re-inserts it without changing its causal length.
  fc.record({
    kind: fc.constant('replace' as const),
    site: fc.nat(2),
    id: fc.nat(3),
    state: fc.constantFrom('created', 'started'),
  }),
  // A primary-key change: the old key is deleted, the new one created.
  fc.record({ kind: fc.constant('rekey' as const), site: fc.nat(2), id: fc.nat(3), to: fc.nat(3) }),
  fc.record({ kind: fc.constant('delete' as const), site: fc.nat(2), id: fc.nat(3) }),
  // A site learns what another has broadcast so far: later writes are causally after those.
  fc.record({ kind: fc.constant('learn' as const), site: fc.nat(2), from: fc.nat(2) }),
);

/** The statement one op runs on its origin site. */
function statement(step: Exclude<Op, { kind: 'learn' }>): { sql: string; params: unknown[] } {
  const id = `m${step.id}`;
  switch (step.kind) {
    case 'upsert':
      return {
        sql: 'INSERT INTO machines (id, state, n) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, n = excluded.n',
        params: [id, step.state, step.n],
      };
    case 'replace':
      return {
        sql: 'INSERT OR REPLACE INTO machines (id, state) VALUES (?, ?)',
        params: [id, step.state],
      };
    case 'rekey':
      // OR IGNORE: moving onto a key that is taken changes nothing.
      return {
        sql: 'UPDATE OR IGNORE machines SET id = ? WHERE id = ?',
        params: [`m${step.to}`, id],
      };
    case 'update':
      return { sql: 'UPDATE machines SET state = ? WHERE id = ?', params: [step.state, id] };
    case 'delete':
      return { sql: 'DELETE FROM machines WHERE id = ?', params: [id] };
  }
}

interface Written {
  /** Every broadcast, cut into small chunks. */
  sets: Changeset[];
  /** Each origin site after it has learnt every other's broadcasts: rows and clocks. */
  origins: { rows: unknown[]; clocks: unknown[] }[];
}

/** Runs the ops on three origin sites, then lets every origin learn everything. */
function write(ops: Op[]): Written {
  const origins = [openStore(), openStore(), openStore()];
  const sent: Changeset[][] = [[], [], []];
  try {
    for (const step of ops) {
      const origin = present(origins[step.site], "the step's origin");
      if (step.kind === 'learn') {
        applyChangesets(origin, present(sent[step.from], 'what the source sent'));
        continue;
      }
      const version = origin.transaction([statement(step)]).version;
      if (version !== null) {
        present(sent[step.site], 'what the origin sent').push(
          ...present(versionChangesets(origin, origin.crdt.siteId, version, 40), 'its version'),
        );
      }
    }
    const sets = sent.flat();
    for (const origin of origins) applyChangesets(origin, sets);
    return {
      sets,
      origins: origins.map((origin) => ({ rows: rows(origin), clocks: clocks(origin) })),
    };
  } finally {
    for (const origin of origins) origin.close();
  }
}

function replica(sets: Changeset[]): { rows: unknown[]; clocks: unknown[]; gaps: number } {
  const store: Store = openStore();
  try {
    // One changeset per batch: the order of arrival is the permutation under test.
    for (const set of sets) applyChangesets(store, [set]);
    return { rows: rows(store), clocks: clocks(store), gaps: store.bookkeeping.gapCount() };
  } finally {
    store.close();
  }
}

describe('convergence', () => {
  it('any delivery order gives every replica and every writer identical tables and clocks', () => {
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 25 }),
        fc.infiniteStream(fc.nat()),
        (ops, randomness) => {
          const { sets, origins } = write(ops);
          const shuffled = () => {
            const copy = [...sets];
            for (let i = copy.length - 1; i > 0; i--) {
              const j = randomness.next().value % (i + 1);
              [copy[i], copy[j]] = [
                present(copy[j], 'a changeset below the length'),
                present(copy[i], 'a changeset below the length'),
              ];
            }
            return copy;
          };
          const [first, second, third] = [replica(sets), replica(shuffled()), replica(shuffled())];
          expect(second).toEqual(first);
          expect(third).toEqual(first);
          expect(first.gaps).toBe(0);
          // The writers hold the same clocks as those who only received (crsql_changes in full,
          // sentinels included), so every node serves each version with the same contents.
          for (const origin of origins) {
            expect(origin.rows).toEqual(first.rows);
            expect(origin.clocks).toEqual(first.clocks);
          }
          // No causal length learnt from a column change is left standing in for its sentinel.
          expect(first.clocks).not.toContainEqual(expect.objectContaining({ db_version: 0 }));
        },
      ),
      // Each run opens six SQLite files; the unit test in crdt.test.ts pins the known case.
      { numRuns: 150 },
    );
    // About 80 s on two quiet cores: the bound leaves room for a loaded machine.
  }, 300_000);
});

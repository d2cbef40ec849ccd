import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyChangesets } from '../src/replication/apply.js';
import type { Changeset } from '../src/replication/codec.js';
import { versionChangesets } from '../src/replication/serve.js';
import type { Store } from '../src/store.js';
import { clocks, openStore, rows } from './crdt-helpers.js';

type Op =
  | { kind: 'upsert'; site: number; id: number; state: string; n: number | null }
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
  fc.record({ kind: fc.constant('delete' as const), site: fc.nat(2), id: fc.nat(3) }),
  // A site learns what another has broadcast so far: later writes are causally after those.
  fc.record({ kind: fc.constant('learn' as const), site: fc.nat(2), from: fc.nat(2) }),
);

/** Runs the ops on three origin sites, returning every broadcast, cut into small chunks. */
function broadcasts(ops: Op[]): Changeset[] {
  const origins = [openStore(), openStore(), openStore()];
  const sent: Changeset[][] = [[], [], []];
  try {
    for (const step of ops) {
      const origin = origins[step.site]!;
      if (step.kind === 'learn') {
        applyChangesets(origin, sent[step.from]!);
        continue;
      }
      const sql =
        step.kind === 'upsert'
          ? 'INSERT INTO machines (id, state, n) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, n = excluded.n'
          : step.kind === 'update'
            ? 'UPDATE machines SET state = ? WHERE id = ?'
            : 'DELETE FROM machines WHERE id = ?';
      const params =
        step.kind === 'upsert'
          ? [`m${step.id}`, step.state, step.n]
          : step.kind === 'update'
            ? [step.state, `m${step.id}`]
            : [`m${step.id}`];
      const version = origin.transaction([{ sql, params }]).version;
      if (version !== null) {
        sent[step.site]!.push(...versionChangesets(origin, origin.crdt.siteId, version, 40)!);
      }
    }
    return sent.flat();
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
  it('any delivery order of the same changes gives identical tables and clocks on three replicas', () => {
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 25 }),
        fc.infiniteStream(fc.nat()),
        (ops, randomness) => {
          const sets = broadcasts(ops);
          const shuffled = () => {
            const copy = [...sets];
            for (let i = copy.length - 1; i > 0; i--) {
              const j = randomness.next().value % (i + 1);
              [copy[i], copy[j]] = [copy[j]!, copy[i]!];
            }
            return copy;
          };
          const [first, second, third] = [replica(sets), replica(shuffled()), replica(shuffled())];
          expect(second).toEqual(first);
          expect(third).toEqual(first);
          expect(first.gaps).toBe(0);
          // No causal length learnt from a column change is left standing in for its sentinel.
          expect(first.clocks).not.toContainEqual(expect.objectContaining({ db_version: 0 }));
        },
      ),
      { numRuns: 60 },
    );
  });
});

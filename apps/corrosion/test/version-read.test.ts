// A version's changes as the store hands them to broadcast and sync — built from its rows alone
// when every row was inserted under a new key, else read back with their clocks — are exactly the rows
// `crsql_changes` holds for that version, on a random workload of multi-statement transactions
// (upserts, INSERT OR REPLACE, updates of some columns, deletes, key changes) on two writers that
// learn from each other.
import { present } from '@fleet/service/invariant';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { applyChangesets } from '../src/replication/apply.js';
import { versionChangesets } from '../src/replication/serve.js';
import type { Store } from '../src/store.js';
import { openStore } from './crdt-helpers.js';

const schema = `CREATE TABLE machines (
  id TEXT NOT NULL PRIMARY KEY,
  state TEXT NOT NULL DEFAULT '',
  n INTEGER,
  data BLOB
);
CREATE TABLE placements (
  app TEXT NOT NULL,
  slot INTEGER NOT NULL,
  weight REAL,
  PRIMARY KEY (app, slot)
);
CREATE TABLE tags (name TEXT NOT NULL PRIMARY KEY);`;

const id = fc.constantFrom('m0', 'm1', 'm2', 'm3', 'm4', 'm5');
const slot = fc.nat(4);
const statement = fc.oneof(
  fc
    .tuple(id, fc.constantFrom('created', 'started'), fc.option(fc.integer({ min: -2, max: 2 })))
    .map(([key, state, n]) => ({
      sql: 'INSERT INTO machines (id, state, n) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, n = excluded.n',
      params: [key, state, n],
    })),
  fc.tuple(id, fc.constantFrom('created', 'stopped')).map(([key, state]) => ({
    sql: "INSERT OR REPLACE INTO machines (id, state, data) VALUES (?, ?, x'00ff')",
    params: [key, state],
  })),
  fc.tuple(id, fc.constantFrom('stopped', '')).map(([key, state]) => ({
    sql: 'UPDATE machines SET state = ? WHERE id = ?',
    params: [state, key],
  })),
  fc.tuple(id, id).map(([from, to]) => ({
    sql: 'UPDATE OR IGNORE machines SET id = ? WHERE id = ?',
    params: [to, from],
  })),
  id.map((key) => ({ sql: 'DELETE FROM machines WHERE id = ?', params: [key] })),
  fc.tuple(slot, fc.option(fc.double({ min: -1, max: 1, noNaN: true }))).map(([at, weight]) => ({
    sql: 'INSERT OR REPLACE INTO placements VALUES (?, ?, ?)',
    params: ['web', at, weight],
  })),
  slot.map((at) => ({ sql: 'DELETE FROM placements WHERE slot = ?', params: [at] })),
  fc.constantFrom('a', 'b').map((name) => ({
    sql: 'INSERT OR REPLACE INTO tags VALUES (?)',
    params: [name],
  })),
  fc.constantFrom('a', 'b').map((name) => ({
    sql: 'DELETE FROM tags WHERE name = ?',
    params: [name],
  })),
);
/** A transaction on writer `site` (0 or 1), or writer `site` learning all the other has. */
const step = fc.oneof(
  fc.record({
    site: fc.nat(1),
    statements: fc.array(statement, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({ site: fc.nat(1), learn: fc.constant(true) }),
);

/** `crsql_changes` of one version, in seq order: the reference the set-wise read must match. */
function viewOf(store: Store, site: number, version: number): unknown[] {
  return store.db
    .prepare(
      `SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, ts
       FROM crsql_changes WHERE site_ordinal = ? AND db_version = ? ORDER BY seq`,
    )
    .all(site, version);
}

function everyVersionMatches(store: Store): void {
  for (const site of store.bookkeeping.sites()) {
    for (let version = 1; version <= store.bookkeeping.head(site); version++) {
      const read = store.crdt.changesOf(site, version);
      expect(read.map((change) => ({ ...change }))).toEqual(viewOf(store, site, version));
    }
  }
}

describe('reading a version back', () => {
  it('gives exactly the rows crsql_changes holds for the version, on every site, built or read back', () => {
    // Transactions whose changes were built from their rows, not read back with their clocks.
    let built = 0;
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 20 }), (steps) => {
        const writers = [openStore(schema), openStore(schema)];
        try {
          for (const next of steps) {
            const writer = present(writers[next.site], "the step's writer");
            if ('learn' in next) {
              const other = present(writers[1 - next.site], 'the other writer');
              const sets = [];
              for (let version = 1; version <= other.version; version++) {
                sets.push(
                  ...present(
                    versionChangesets(other, other.crdt.siteId, version, 1 << 20),
                    `version ${version}`,
                  ),
                );
              }
              applyChangesets(writer, sets);
              continue;
            }
            const readBack = vi.spyOn(writer.crdt, 'changesOf');
            const outcome = writer.transaction(next.statements);
            if (outcome.version !== null) {
              if (readBack.mock.calls.length === 0) built++;
              expect(outcome.changes).toEqual(viewOf(writer, 0, outcome.version));
              // Rows built with the changes are the rows read off them, in the same order.
              expect(outcome.rows).toEqual(writer.crdt.rowsOf(outcome.changes));
            }
            readBack.mockRestore();
          }
          for (const writer of writers) everyVersionMatches(writer);
        } finally {
          for (const writer of writers) writer.close();
        }
      }),
      { numRuns: 120 },
    );
    expect(built).toBeGreaterThan(50);
  }, 120_000);
});

// A row inserted under a key new to the node keeps its sentinel alone, its column clocks implied
// by it; anything that writes a clock of the row writes them out first. From outside nothing
// tells the two apart: crsql_changes, the changes served and the merge see every column's clock.
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../src/store.js';
import { clocks, exec, machinesSchema, openStore, rows, ship } from './crdt-helpers.js';

const stores: Store[] = [];
const store = (schema = machinesSchema) => {
  const opened = openStore(schema);
  stores.push(opened);
  return opened;
};
afterEach(() => {
  for (const opened of stores.splice(0)) opened.close();
});

/** The clock table's rows of one machine: cid, col_version, seq, implied. */
const clockRows = (s: Store, id: string) =>
  s.db
    .prepare(
      'SELECT cid, col_version, seq, implied FROM __corro_clock_machines WHERE pk_id = ? ORDER BY cid',
    )
    .all(id);

const changesOf = (s: Store, id: string) =>
  s.db
    .prepare(
      `SELECT cid, val, col_version, seq, cl FROM crsql_changes
       WHERE "table" = 'machines' AND pk = corro_pack(?) ORDER BY seq`,
    )
    .all(id);

describe('implied column clocks', () => {
  it('a new row writes its sentinel alone, and crsql_changes shows every column at version 1', () => {
    const a = store();
    exec(
      a,
      "INSERT INTO machines (id, state, n) VALUES ('m1', 'created', 1), ('m2', 'created', 2)",
    );
    expect(clockRows(a, 'm2')).toEqual([{ cid: '-1', col_version: 1, seq: 4, implied: 3 }]);
    expect(changesOf(a, 'm2')).toEqual([
      { cid: '-1', val: null, col_version: 1, seq: 4, cl: 1 },
      { cid: 'state', val: 'created', col_version: 1, seq: 5, cl: 1 },
      { cid: 'n', val: 2, col_version: 1, seq: 6, cl: 1 },
      { cid: 'data', val: null, col_version: 1, seq: 7, cl: 1 },
    ]);
  });

  it('an update writes the implied clocks out, then versions only the column it changed', () => {
    const a = store();
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'created')");
    const before = changesOf(a, 'm1');
    exec(a, "UPDATE machines SET state = 'started' WHERE id = 'm1'");
    expect(clockRows(a, 'm1')).toEqual([
      { cid: '-1', col_version: 1, seq: 0, implied: 0 },
      { cid: 'data', col_version: 1, seq: 3, implied: 0 },
      { cid: 'n', col_version: 1, seq: 2, implied: 0 },
      { cid: 'state', col_version: 2, seq: 0, implied: 0 },
    ]);
    const after = changesOf(a, 'm1') as { cid: string }[];
    expect(after.filter((change) => change.cid !== 'state')).toEqual(
      (before as { cid: string }[]).filter((change) => change.cid !== 'state'),
    );
  });

  it('a row inserted twice in one write is an insert, then a re-insert', () => {
    const a = store();
    a.transaction([
      { sql: "INSERT INTO machines (id, state) VALUES ('m1', 'created')", params: [] },
      { sql: "INSERT OR REPLACE INTO machines (id, state) VALUES ('m1', 'started')", params: [] },
    ]);
    expect(changesOf(a, 'm1')).toEqual([
      { cid: '-1', val: null, col_version: 1, seq: 0, cl: 1 },
      { cid: 'state', val: 'started', col_version: 2, seq: 5, cl: 1 },
      { cid: 'n', val: null, col_version: 2, seq: 6, cl: 1 },
      { cid: 'data', val: null, col_version: 2, seq: 7, cl: 1 },
    ]);
  });

  it('a row merged whole is kept compact too, with the clocks its origin has', () => {
    const [a, b] = [store(), store()];
    exec(a, "INSERT INTO machines (id, state, n) VALUES ('m1', 'created', 1)");
    ship(a, b);
    expect(clockRows(b, 'm1')).toEqual([{ cid: '-1', col_version: 1, seq: 0, implied: 3 }]);
    expect(clocks(b)).toEqual(clocks(a));
    // A change merged onto it writes its clocks out first, on either side.
    exec(b, "UPDATE machines SET n = 2 WHERE id = 'm1'");
    ship(b, a);
    expect(clockRows(a, 'm1')).toHaveLength(4);
    expect(clocks(a)).toEqual(clocks(b));
    expect(rows(a)).toEqual(rows(b));
  });

  it('a column added later is not implied for the rows written before it', () => {
    const a = store();
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'created')");
    a.reloadSchema(
      machinesSchema.replace('data BLOB', "data BLOB,\n  region TEXT NOT NULL DEFAULT 'ams'"),
    );
    exec(a, "INSERT INTO machines (id, state) VALUES ('m2', 'created')");
    const cids = (id: string) => (changesOf(a, id) as { cid: string }[]).map((c) => c.cid);
    expect(cids('m1')).toEqual(['-1', 'state', 'n', 'data']);
    expect(cids('m2')).toEqual(['-1', 'state', 'n', 'data', 'region']);
    // Its first update writes out what the sentinel implied, no more.
    exec(a, "UPDATE machines SET region = 'fra' WHERE id = 'm1'");
    expect(cids('m1').sort()).toEqual(['-1', 'data', 'n', 'region', 'state']);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../src/store.js';
import { tempDir } from './agent.js';
import { exec, openStore } from './crdt-helpers.js';

const stores: Store[] = [];
afterEach(() => {
  for (const opened of stores.splice(0)) opened.close();
});

const logOf = (store: Store) =>
  store.db
    .prepare('SELECT site, db_version, key FROM __corro_log_machines ORDER BY 1, 2, 3')
    .all() as { site: number; db_version: number; key: number }[];

/** Every local version's changes as served, for comparing a store before and after. */
const served = (store: Store) =>
  Array.from({ length: store.version }, (_, at) => store.crdt.changesOf(0, at + 1));

describe('the per-row version log', () => {
  it('holds one entry per row a version wrote, whatever the number of columns', () => {
    const store = openStore();
    stores.push(store);
    store.transaction(
      ['m1', 'm2', 'm3'].map((id) => ({
        sql: "INSERT INTO machines (id, state, n) VALUES (?, 'created', 1)",
        params: [id],
      })),
    );
    exec(store, "UPDATE machines SET state = 'started', n = 2 WHERE id = 'm2'");
    const log = logOf(store);
    expect(log.filter((entry) => entry.db_version === 1)).toHaveLength(3);
    expect(log.filter((entry) => entry.db_version === 2)).toHaveLength(1);
    expect(store.crdt.changesOf(0, 2).map((change) => change.cid)).toEqual(['state', 'n']);
  });

  it('loses the entries of versions whose clocks were all overwritten to compaction, and nothing served changes', () => {
    const store = openStore();
    stores.push(store);
    exec(store, "INSERT INTO machines (id, state) VALUES ('m1', 'created')");
    exec(store, "INSERT INTO machines (id, state) VALUES ('m2', 'created')");
    exec(store, "UPDATE machines SET state = 'started' WHERE id = 'm1'");
    exec(store, "DELETE FROM machines WHERE id = 'm1'"); // m1's versions 1 and 3 hold nothing now
    exec(store, "UPDATE machines SET n = 5 WHERE id = 'm2'"); // version 2 keeps m2's other clocks
    const before = served(store);
    expect(logOf(store)).toHaveLength(5);
    let deleted = 0;
    // A slice of 2 entries per step: the walk crosses slices and starts over at the end.
    for (let step = 0; step < 6; step++) deleted += store.compactLog(2);
    expect(deleted).toBe(2);
    expect(logOf(store).map((entry) => entry.db_version)).toEqual([2, 4, 5]);
    expect(served(store)).toEqual(before);
  });

  it('is built from the clocks on the first start of a database made before it', () => {
    const dir = tempDir();
    const first = openStore(undefined, dir);
    stores.push(first);
    exec(first, "INSERT INTO machines (id, state) VALUES ('m1', 'created'), ('m2', 'created')");
    exec(first, "UPDATE machines SET state = 'started' WHERE id = 'm2'");
    const before = served(first);
    first.db.exec(`DROP TABLE __corro_log_machines;
      CREATE INDEX __corro_clock_machines_version ON __corro_clock_machines (site, db_version, seq)`);
    first.close();
    stores.pop();
    const again = openStore(undefined, dir);
    stores.push(again);
    expect(logOf(again)).toHaveLength(3);
    expect(served(again)).toEqual(before);
    const index = again.db
      .prepare("SELECT 1 FROM sqlite_master WHERE name = '__corro_clock_machines_version'")
      .get();
    expect(index).toBeUndefined();
  });
});

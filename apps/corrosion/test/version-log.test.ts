import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import {
  compactionDelayMsMax,
  compactionDelayMsMin,
  nextCompactionDelayMs,
} from '../src/crdt/log-compaction.js';
import type { Store } from '../src/store.js';
import { tempDir } from './agent.js';
import { clocks, exec, openStore, rows } from './crdt-helpers.js';

const stores: Store[] = [];
afterEach(() => {
  for (const opened of stores.splice(0)) opened.close();
});

const logOf = (store: Store) =>
  store.db
    .prepare('SELECT site, db_version, pk_id FROM __corro_log_machines ORDER BY 1, 2, 3')
    .all() as { site: number; db_version: number; pk_id: string }[];

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

  it('paces compaction by what it finds: the wait doubles while steps delete nothing, and drops back when one does', () => {
    let delay = compactionDelayMsMin;
    const waits: number[] = [];
    for (let step = 0; step < 7; step++) {
      delay = nextCompactionDelayMs(delay, 0);
      waits.push(delay);
    }
    expect(waits).toEqual([2000, 4000, 8000, 16_000, 32_000, 32_000, 32_000]);
    expect(nextCompactionDelayMs(compactionDelayMsMax, 3)).toBe(compactionDelayMsMin);
  });

  for (const log of [true, false]) {
    it(`moves a database of clocks keyed through a pk table${log ? '' : ', made before the log,'} to clocks keyed by pk, every clock kept`, () => {
      const dir = tempDir();
      const first = openStore(undefined, dir);
      stores.push(first);
      exec(first, "INSERT INTO machines (id, state) VALUES ('m1', 'created'), ('m2', 'created')");
      exec(first, "UPDATE machines SET state = 'started' WHERE id = 'm2'");
      exec(first, "INSERT INTO machines (id, state, n) VALUES ('m3', 'created', 3)");
      exec(first, "DELETE FROM machines WHERE id = 'm1'");
      const before = { served: served(first), clocks: clocks(first), rows: rows(first) };
      first.close();
      stores.pop();
      toKeyedLayout(join(dir, 'corrosion.db'), log);
      const again = openStore(undefined, dir);
      stores.push(again);
      expect(served(again)).toEqual(before.served);
      expect(clocks(again)).toEqual(before.clocks);
      expect(rows(again)).toEqual(before.rows);
      // Rebuilt from the clocks, the log lacks the entry of m1's version 1, which no clock holds.
      expect(logOf(again)).toHaveLength(log ? 5 : 4);
      const leftovers = again.db
        .prepare(
          `SELECT name FROM sqlite_master WHERE name IN ('__corro_pks_machines',
            '__corro_clock_machines_version')`,
        )
        .all();
      expect(leftovers).toEqual([]);
      const insertTrigger = again.db
        .prepare("SELECT sql FROM sqlite_master WHERE name = '__corro_insert_machines'")
        .pluck()
        .get();
      expect(insertTrigger).toContain('__corro_journal_machines');
      // It writes and serves on the new layout.
      const version = exec(again, "UPDATE machines SET n = 9 WHERE id = 'm3'");
      expect(again.crdt.changesOf(0, version as number).map((change) => change.cid)).toEqual(['n']);
    });
  }
});

/**
 * Rewrites a store's file to the layout before clocks keyed by pk: a pk-lookup table giving each
 * pk an integer key, clocks and log entries (if `log`, else the clock index the log replaced)
 * keyed by it, every column clock written out, no journal, its triggers in the file.
 */
function toKeyedLayout(path: string, log: boolean): void {
  const db = new Database(path);
  const places = "SELECT 'state' AS cid, 1 AS n UNION ALL SELECT 'n', 2 UNION ALL SELECT 'data', 3";
  for (const { name } of db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'machines'")
    .all() as { name: string }[]) {
    db.exec(`DROP TRIGGER "${name}"`);
  }
  db.exec(`DROP VIEW crsql_changes;
    DROP TABLE __corro_journal_machines;
    CREATE TABLE __corro_pks_machines (__corro_key INTEGER PRIMARY KEY AUTOINCREMENT, id);
    CREATE UNIQUE INDEX __corro_pks_machines_pk ON __corro_pks_machines (id);
    INSERT INTO __corro_pks_machines (id) SELECT DISTINCT pk_id FROM __corro_clock_machines;
    CREATE TABLE keyed (key INTEGER NOT NULL, cid TEXT NOT NULL, col_version INTEGER NOT NULL,
      db_version INTEGER NOT NULL, site INTEGER NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
      PRIMARY KEY (key, cid)) WITHOUT ROWID;
    INSERT INTO keyed SELECT p.__corro_key, c.cid, c.col_version, c.db_version, c.site, c.seq, c.ts
      FROM __corro_clock_machines c JOIN __corro_pks_machines p ON p.id = c.pk_id;
    INSERT INTO keyed SELECT p.__corro_key, i.cid, 1, c.db_version, c.site, c.seq + i.n, c.ts
      FROM __corro_clock_machines c JOIN __corro_pks_machines p ON p.id = c.pk_id
      JOIN (${places}) i ON i.n <= c.implied WHERE c.cid = '-1';
    DROP TABLE __corro_clock_machines;
    ALTER TABLE keyed RENAME TO __corro_clock_machines;
    CREATE TABLE keyed_log (site INTEGER NOT NULL, db_version INTEGER NOT NULL,
      key INTEGER NOT NULL, PRIMARY KEY (site, db_version, key)) WITHOUT ROWID;
    INSERT INTO keyed_log SELECT g.site, g.db_version, p.__corro_key
      FROM __corro_log_machines g JOIN __corro_pks_machines p ON p.id = g.pk_id;
    DROP TABLE __corro_log_machines;
    ${
      log
        ? 'ALTER TABLE keyed_log RENAME TO __corro_log_machines;'
        : `DROP TABLE keyed_log;
           CREATE INDEX __corro_clock_machines_version ON __corro_clock_machines (site, db_version, seq);`
    }
    CREATE TRIGGER __corro_insert_machines AFTER INSERT ON machines BEGIN SELECT 1; END;`);
  db.close();
}

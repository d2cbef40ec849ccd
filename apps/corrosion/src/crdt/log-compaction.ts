import type { Database as Db, Statement } from 'better-sqlite3';
import { type CrrTable, quote } from './crr.js';

type Entry = [site: number, dbVersion: number, key: number];

/**
 * Deletes the version log's entries whose row no longer holds a clock of their version (a later
 * version overwrote them all), a bounded slice of entries per step, walking each table's log in
 * order and starting over at its end. Such entries are harmless (a read skips them) but would
 * otherwise grow with every write, not with the data.
 */
export class LogCompaction {
  readonly #tables: { last: Statement; drop: Statement; cursor: Entry }[];
  #next = 0;

  constructor(db: Db, tables: CrrTable[]) {
    this.#tables = tables.map((table) => {
      const logT = quote(table.logTable);
      const after = '(site, db_version, key) > (?, ?, ?)';
      return {
        // The last entry of the slice that starts after the cursor.
        last: db
          .prepare(
            `SELECT site, db_version, key FROM ${logT} WHERE ${after}
             ORDER BY site, db_version, key LIMIT 1 OFFSET ?`,
          )
          .raw(),
        drop: db.prepare(
          `DELETE FROM ${logT} WHERE ${after} AND (site, db_version, key) <= (?, ?, ?)
           AND NOT EXISTS (SELECT 1 FROM ${quote(table.clockTable)} c
             WHERE c.key = ${logT}.key AND c.site = ${logT}.site AND c.db_version = ${logT}.db_version)`,
        ),
        cursor: [-1, -1, -1],
      };
    });
  }

  /** Looks at up to `entriesMax` entries of one table; returns how many it deleted. */
  step(entriesMax: number): number {
    const table = this.#tables[this.#next++ % this.#tables.length];
    if (table === undefined) return 0;
    const last = table.last.get(...table.cursor, entriesMax - 1) as Entry | undefined;
    const end: Entry = last ?? [Number.MAX_SAFE_INTEGER, 0, 0];
    const deleted = table.drop.run(...table.cursor, ...end).changes;
    table.cursor = last ?? [-1, -1, -1];
    return deleted;
  }
}

import type { Database as Db, Statement } from 'better-sqlite3';
import { type CrrTable, copyValues, pkCopy, pkIs, quote } from './crr.js';
import type { SqlValue } from './pack.js';

/** A log entry: site, db_version, then the pk's values. */
type Entry = SqlValue[];

/**
 * Deletes the version log's entries whose row no longer holds a clock of their version (a later
 * version overwrote them all), a bounded slice of entries per step, walking each table's log in
 * order and starting over at its end. Such entries are harmless (a read skips them) but would
 * otherwise grow with every write, not with the data.
 */
export class LogCompaction {
  readonly #tables: { last: Statement; drop: Statement; start: Entry; cursor: Entry }[];
  #next = 0;

  constructor(db: Db, tables: CrrTable[]) {
    this.#tables = tables.map((table) => {
      const logT = quote(table.logTable);
      const entry = `site, db_version, ${table.pks.map(pkCopy).join(', ')}`;
      const marks = `?, ?, ${table.pks.map(() => '?').join(', ')}`;
      const after = `(${entry}) > (${marks})`;
      const start: Entry = [-1, -1, ...table.pks.map(() => null)]; // site -1 decides alone
      return {
        // The last entry of the slice that starts after the cursor.
        last: db
          .prepare(`SELECT ${entry} FROM ${logT} WHERE ${after} ORDER BY ${entry} LIMIT 1 OFFSET ?`)
          .raw(),
        drop: db.prepare(
          `DELETE FROM ${logT} WHERE ${after} AND (${entry}) <= (${marks})
           AND NOT EXISTS (SELECT 1 FROM ${quote(table.clockTable)} c
             WHERE ${pkIs(table, 'c', copyValues(table, logT))} AND c.site = ${logT}.site
               AND c.db_version = ${logT}.db_version)`,
        ),
        start,
        cursor: start,
      };
    });
  }

  /** Looks at up to `entriesMax` entries of one table; returns how many it deleted. */
  step(entriesMax: number): number {
    const table = this.#tables[this.#next++ % this.#tables.length];
    if (table === undefined) return 0;
    const last = table.last.get(...table.cursor, entriesMax - 1) as Entry | undefined;
    const end: Entry = last ?? [Number.MAX_SAFE_INTEGER, ...table.start.slice(1)];
    const deleted = table.drop.run(...table.cursor, ...end).changes;
    table.cursor = last ?? table.start;
    return deleted;
  }
}

/** The wait between compaction steps while they find entries to delete. */
export const compactionDelayMsMin = 1000;
/** The longest wait, however long the steps find nothing. */
export const compactionDelayMsMax = 32_000;

/**
 * The wait before the next step, from this one's and what the step deleted. A step that finds
 * nothing doubles the wait: a log of live entries (rows only ever inserted) is not walked over and
 * over — at 5,000 entries a second that walk was about 3 % of a busy agent's CPU. One that finds
 * some brings it back to the floor.
 */
export function nextCompactionDelayMs(delayMs: number, deleted: number): number {
  return deleted > 0 ? compactionDelayMsMin : Math.min(compactionDelayMsMax, delayMs * 2);
}

import type { Database as Db, Statement } from 'better-sqlite3';
import type { Change } from './changes.js';
import { type CrrTable, copyValues, pkIs, quote, refValues, SENTINEL } from './crr.js';
import { packColumns, type SqlValue } from './pack.js';

/** Columns of a row of `#read` before its pk values: cid, col_version, seq, ts, implied, cl. */
const rowHead = 6;

/**
 * Reads one version's changes of one table set-wise: one pass over the rows the version wrote
 * (its entries in the per-row version log) with their clocks of that version, each row's values
 * and causal length, the pk packed once per row rather than once per change; a sentinel's
 * implied column clocks (see `makeCrr`) come out as the changes they stand for. Yields exactly
 * the rows `crsql_changes` holds for the version (property-tested against the view).
 */
export class VersionRead {
  readonly #table: CrrTable;
  readonly #read: Statement;
  /** cid → position of its value in a row of `#read` (after the head and the pks). */
  readonly #valueAt: Map<string, number>;

  constructor(db: Db, table: CrrTable) {
    this.#table = table;
    const clockT = quote(table.clockTable);
    const g = copyValues(table, 'g');
    const values = table.columns.map((col) => `t.${quote(col)}`);
    this.#read = db
      .prepare(
        `SELECT c.cid, c.col_version, c.seq, c.ts, c.implied, l.col_version, ${[...g, ...values].join(', ')}
         FROM ${quote(table.logTable)} g
         JOIN ${clockT} c ON ${pkIs(table, 'c', g)} AND c.site = g.site AND c.db_version = g.db_version
         LEFT JOIN ${clockT} l ON ${pkIs(table, 'l', g)} AND l.cid = '${SENTINEL}'
         LEFT JOIN ${quote(table.name)} t ON ${pkIs(table, 'g', refValues(table, 't'))}
         WHERE g.site = ? AND g.db_version = ?`,
      )
      .raw();
    const first = rowHead + table.pks.length;
    this.#valueAt = new Map(table.columns.map((col, at) => [col, first + at]));
  }

  /** Appends the version's changes of this table to `into` (in no particular order). */
  read(site: number, siteId: Buffer, version: number, into: Change[]): void {
    const { name, pks, columns } = this.#table;
    const pkEnd = rowHead + pks.length;
    let pkValues: SqlValue[] = [];
    let pk: Buffer = Buffer.alloc(0);
    for (const row of this.#read.all(site, version) as SqlValue[][]) {
      const [cid, colVersion, seq, ts, implied, cl] = row as [
        string,
        number,
        number,
        number,
        number,
        number | null,
      ];
      // The log is in pk order: a row's clocks come together.
      if (!samePkValues(row, pkValues, rowHead)) {
        pkValues = row.slice(rowHead, pkEnd);
        pk = packColumns(pkValues);
      }
      const at = this.#valueAt.get(cid);
      const val = at === undefined ? null : (row[at] ?? null);
      into.push({
        table: name,
        pk,
        cid,
        val,
        col_version: colVersion,
        db_version: version,
        site_id: siteId,
        cl: cl as number, // null only for a clock without a sentinel, as in the view
        seq,
        ts,
      });
      for (let n = 1; n <= implied; n++) {
        const column = columns[n - 1] as string;
        const value = row[pkEnd + n - 1] ?? null;
        // Implied clocks are a fresh row's (causal length 1, see `makeCrr`).
        into.push(freshChange(name, pk, column, value, version, siteId, seq + n, ts));
      }
    }
  }
}

/** Whether `row` from `offset` on starts with `pk`'s values. */
function samePkValues(row: SqlValue[], pk: SqlValue[], offset: number): boolean {
  if (pk.length === 0) return false;
  for (let at = 0; at < pk.length; at++) {
    const a = row[offset + at];
    const b = pk[at];
    if (a === b) continue;
    if (!(Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b))) return false;
  }
  return true;
}

/** A change of a fresh row: causal length 1, every column at version 1. */
export function freshChange(
  table: string,
  pk: Buffer,
  cid: string,
  val: SqlValue,
  version: number,
  siteId: Buffer,
  seq: number,
  ts: number,
): Change {
  return {
    table,
    pk,
    cid,
    val,
    col_version: 1,
    db_version: version,
    site_id: siteId,
    cl: 1,
    seq,
    ts,
  };
}

import type { Database as Db, Statement } from 'better-sqlite3';
import type { Change } from './changes.js';
import type { RowChange } from './crdt.js';
import { type CrrTable, quote, SENTINEL } from './crr.js';
import { packColumns, type SqlValue } from './pack.js';

/** Columns of a row of `#rows` before its pk values: key, causal length, sentinel seq. */
const rowHead = 3;

/**
 * Reads one version's changes of one table set-wise: one pass over the rows the version wrote
 * (its entries in the per-row version log) and their clock rows of that version, and one lookup per row the version touched (its pk, its values, its causal length), the pk
 * packed once per row rather than once per change. Yields exactly the rows `crsql_changes`
 * holds for the version (the per-change join it replaced; property-tested against the view).
 */
export class VersionRead {
  readonly #table: CrrTable;
  readonly #clocks: Statement;
  readonly #rows: Statement;
  /** cid → position of its value in a row of `#rows` (after key, cl, sentinel seq and the pks). */
  readonly #valueAt: Map<string, number>;

  constructor(db: Db, table: CrrTable) {
    this.#table = table;
    const clockT = quote(table.clockTable);
    const logT = quote(table.logTable);
    const join = table.pks.map((col) => `t.${quote(col)} = p.${quote(col)}`).join(' AND ');
    const pkRefs = table.pks.map((col) => `p.${quote(col)}`);
    const values = table.columns.map((col) => `t.${quote(col)}`);
    this.#clocks = db
      .prepare(
        `SELECT c.key, c.cid, c.col_version, c.seq, c.ts FROM ${logT} g
         JOIN ${clockT} c ON c.key = g.key AND c.site = g.site AND c.db_version = g.db_version
         WHERE g.site = ? AND g.db_version = ?`,
      )
      .raw();
    this.#rows = db
      .prepare(
        `SELECT p.__corro_key, l.col_version, l.seq, ${[...pkRefs, ...values].join(', ')}
         FROM ${quote(table.pksTable)} p
         LEFT JOIN ${clockT} l ON l.key = p.__corro_key AND l.cid = '${SENTINEL}'
         LEFT JOIN ${quote(table.name)} t ON ${join}
         WHERE p.__corro_key IN (SELECT key FROM ${logT} WHERE site = ? AND db_version = ?)`,
      )
      .raw();
    const first = rowHead + table.pks.length;
    this.#valueAt = new Map(table.columns.map((col, at) => [col, first + at]));
  }

  /**
   * Appends the changes of a local version whose every row was inserted under a key new to this
   * node (see `created` in crr.ts): they are certain without reading the clocks — the sentinel at
   * causal length 1 with the seq its clock holds, then version 1 of every column at the next
   * seqs, the values as stored. Property-tested equal to `read`. Each row is new, so it is also
   * appended to `rows` once, its pk as read (what `rowsOf` would unpack from the changes).
   */
  readFresh(siteId: Buffer, version: number, ts: number, into: Change[], rows: RowChange[]): void {
    const pkEnd = rowHead + this.#table.pks.length;
    const { name: table, columns } = this.#table;
    for (const row of this.#rows.all(0, version) as SqlValue[][]) {
      const pkValues = row.slice(rowHead, pkEnd);
      const pk = packColumns(pkValues);
      const seq = row[2] as number;
      rows.push({ table, pk: pkValues, deleted: false });
      into.push(freshChange(table, pk, SENTINEL, null, version, siteId, seq, ts));
      for (let at = 0; at < columns.length; at++) {
        const cid = columns[at] as string;
        const val = row[pkEnd + at] ?? null;
        into.push(freshChange(table, pk, cid, val, version, siteId, seq + at + 1, ts));
      }
    }
  }

  /** Appends the version's changes of this table to `into` (in no particular order). */
  read(site: number, siteId: Buffer, version: number, into: Change[]): void {
    const clocks = this.#clocks.all(site, version) as [number, string, number, number, number][];
    if (clocks.length === 0) return;
    const rows = new Map<number, { pk: Buffer; cl: number | null; row: SqlValue[] }>();
    const pkEnd = rowHead + this.#table.pks.length;
    for (const row of this.#rows.all(site, version) as SqlValue[][]) {
      rows.set(row[0] as number, {
        pk: packColumns(row.slice(rowHead, pkEnd)),
        cl: row[1] as number | null,
        row,
      });
    }
    for (const [key, cid, colVersion, seq, ts] of clocks) {
      const row = rows.get(key);
      if (row === undefined) continue; // a clock without its key: the view's join drops it too
      const at = this.#valueAt.get(cid);
      into.push({
        table: this.#table.name,
        pk: row.pk,
        cid,
        val: at === undefined ? null : (row.row[at] ?? null),
        col_version: colVersion,
        db_version: version,
        site_id: siteId,
        cl: row.cl as number, // null only for a clock without a sentinel, as in the view
        seq,
        ts,
      });
    }
  }
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

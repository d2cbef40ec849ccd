import {
  type CrrTable,
  columnPlaces,
  copyValues,
  literal,
  pkIs,
  quote,
  refValues,
  SENTINEL,
} from './crr.js';
import type { SqlValue } from './pack.js';

/** One row of `crsql_changes`: a column's (or the sentinel's) value and the clock that set it. */
export interface Change {
  table: string;
  /** Primary key in cr-sqlite's packed format. */
  pk: Buffer;
  /** Column name, or `-1` for the row's causal length. */
  cid: string;
  val: SqlValue;
  col_version: number;
  /** The version of the transaction that wrote it, on its origin site. */
  db_version: number;
  /** The origin site's 16-byte id. */
  site_id: Buffer;
  /** The row's causal length: odd alive, even deleted. */
  cl: number;
  seq: number;
  ts: number;
}

export const changeColumns =
  '"table", pk, cid, val, col_version, db_version, site_id, cl, seq, ts, site_ordinal';

/**
 * The SELECT of one table's changes, in `crsql_changes`' columns (plus the site ordinal): every
 * clock row, and the column clocks a fresh row's sentinel implies (see `makeCrr`).
 */
export function changesSelect(table: CrrTable): string {
  const clockT = quote(table.clockTable);
  const c = copyValues(table, 'c');
  const valueAt = (cid: string) =>
    table.columns.length === 0
      ? 'NULL'
      : `CASE ${cid} ${table.columns.map((col) => `WHEN ${literal(col)} THEN t.${quote(col)}`).join(' ')} END`;
  const from = `JOIN __corro_sites s ON s.ordinal = c.site LEFT JOIN ${quote(table.name)} t ON ${pkIs(table, 'c', refValues(table, 't'))}`;
  const head = `SELECT ${literal(table.name)} AS "table", corro_pack(${c.join(', ')}) AS pk`;
  const clocks = `${head}, c.cid AS cid, ${valueAt('c.cid')} AS val,
    c.col_version AS col_version, c.db_version AS db_version, s.site_id AS site_id,
    (SELECT l.col_version FROM ${clockT} l WHERE ${pkIs(table, 'l', c)} AND l.cid = '${SENTINEL}') AS cl,
    c.seq AS seq, c.ts AS ts, c.site AS site_ordinal
  FROM ${clockT} c ${from}`;
  if (table.columns.length === 0) return clocks;
  return `${clocks}
  UNION ALL
  ${head}, i.cid AS cid, ${valueAt('i.cid')} AS val, 1 AS col_version, c.db_version AS db_version,
    s.site_id AS site_id, c.col_version AS cl, c.seq + i.n AS seq, c.ts AS ts, c.site AS site_ordinal
  FROM ${clockT} c JOIN (${columnPlaces(table)}) i ON i.n <= c.implied ${from}
  WHERE c.cid = '${SENTINEL}' AND c.implied > 0`;
}

/** `crsql_changes`: every table's changes, queryable like cr-sqlite's virtual table. */
export function changesViewSql(tables: CrrTable[]): string {
  const body =
    tables.length === 0
      ? `SELECT NULL AS "table", NULL AS pk, NULL AS cid, NULL AS val, 0 AS col_version, 0 AS db_version, NULL AS site_id, 0 AS cl, 0 AS seq, 0 AS ts, 0 AS site_ordinal WHERE 0`
      : tables.map(changesSelect).join('\nUNION ALL\n');
  return `DROP VIEW IF EXISTS crsql_changes; CREATE VIEW crsql_changes AS ${body};`;
}

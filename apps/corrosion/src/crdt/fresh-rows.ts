import type { Change } from './changes.js';
import { type CrrTable, SENTINEL } from './crr.js';
import { packColumns, type SqlValue } from './pack.js';

/**
 * The rows one local write inserted under keys new to this node, as the insert trigger reports
 * them (shape b of issue 14: changes built from what was written, not read back). Such a row
 * had no clock, so its changes are certain: causal length 1, version 1 of every column, the seqs
 * the trigger numbered from the one it reported, the values as stored. Any other write (an
 * insert over a known key, an update, a delete, a backfill) makes the write's changes uncertain:
 * they are then read back. Property-tested: built changes equal the ones read back.
 */
export class FreshRows {
  #rows: { table: CrrTable; seq: number; values: SqlValue[] }[] = [];
  #certain = true;

  /** Starts a local write. */
  reset(): void {
    this.#rows = [];
    this.#certain = true;
  }

  /** The insert trigger's report of one row: `values` are its pk values, then its columns. */
  inserted(table: CrrTable | undefined, seq: number, freshKey: boolean, values: SqlValue[]): void {
    if (table === undefined || !freshKey) this.#certain = false;
    else if (this.#certain) this.#rows.push({ table, seq, values });
  }

  /**
   * The write's changes in seq order, or null when they must be read back (`readBack`: another
   * trigger or the backfill wrote clocks).
   */
  changes(readBack: boolean, siteId: Buffer, version: number, ts: number): Change[] | null {
    if (readBack || !this.#certain) return null;
    const changes: Change[] = [];
    for (const { table, seq, values } of this.#rows) {
      const pk = packColumns(values.slice(0, table.pks.length));
      const change = (cid: string, val: SqlValue, at: number): Change => ({
        table: table.name,
        pk,
        cid,
        val,
        col_version: 1,
        db_version: version,
        site_id: siteId,
        cl: 1,
        seq: seq + at,
        ts,
      });
      changes.push(change(SENTINEL, null, 0));
      table.columns.forEach((column, at) => {
        changes.push(change(column, values[table.pks.length + at] ?? null, at + 1));
      });
    }
    return changes;
  }
}

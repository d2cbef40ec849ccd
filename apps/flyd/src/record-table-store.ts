import { present } from '@fleet/service/invariant';
import type { Database as Db } from 'better-sqlite3';

/**
 * What the machine and volume stores share: a table of records keyed by `id`, listed (all, or
 * one app's) in creation order, each row read through the store's `decode` (SQLite has neither
 * JSON nor booleans), and updated field by field with `updated_at` stamped.
 */
export class RecordTable<Row, Decoded> {
  constructor(
    private readonly db: Db,
    private readonly table: 'machines' | 'volumes',
    private readonly decode: (row: Row) => Decoded,
  ) {}

  get(id: string): Decoded | undefined {
    const row = this.db.prepare(`SELECT * FROM ${this.table} WHERE id = ?`).get(id) as
      | Row
      | undefined;
    return row && this.decode(row);
  }

  list(app?: string): Decoded[] {
    const rows = (
      app === undefined
        ? this.db.prepare(`SELECT * FROM ${this.table} ORDER BY created_at`).all()
        : this.db.prepare(`SELECT * FROM ${this.table} WHERE app = ? ORDER BY created_at`).all(app)
    ) as Row[];
    return rows.map(this.decode);
  }

  /**
   * Sets `values` (fields as SQLite stores them) on the record `id`, which the caller knows is
   * there, stamping `updated_at`; the record after it.
   */
  update(id: string, values: Record<string, unknown>): Decoded {
    const set = [
      ...Object.keys(values).map((field) => `${field} = @${field}`),
      'updated_at = @updated_at',
    ].join(', ');
    this.db
      .prepare(`UPDATE ${this.table} SET ${set} WHERE id = @id`)
      .run({ ...values, id, updated_at: new Date().toISOString() });
    return present(this.get(id), `${this.table} row ${id}`);
  }
}

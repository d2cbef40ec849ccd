import type { Database as Db } from 'better-sqlite3';

/** The cid of a row's causal-length entry in the clock table (cr-sqlite's sentinel). */
export const SENTINEL = '-1';

/** What the CRDT layer knows of one replicated table. */
export interface CrrTable {
  name: string;
  /** Primary-key columns in key order. */
  pks: string[];
  /** Every other column. */
  columns: string[];
  pksTable: string;
  clockTable: string;
}

export const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
export const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;

export function describeTable(db: Db, name: string): CrrTable {
  const cols = db.prepare('SELECT name, pk FROM pragma_table_info(?)').all(name) as {
    name: string;
    pk: number;
  }[];
  return {
    name,
    pks: cols
      .filter((col) => col.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((col) => col.name),
    columns: cols.filter((col) => col.pk === 0).map((col) => col.name),
    pksTable: `__corro_pks_${name}`,
    clockTable: `__corro_clock_${name}`,
  };
}

/**
 * Makes `table` a CRR: a pk-lookup table (pk values → a small integer key), a clock table
 * (key, cid, col_version, db_version, site ordinal, seq, ts) whose sentinel row holds the
 * causal length (odd: alive, even: deleted), and AFTER triggers that record local writes. The
 * triggers stand aside while `corro_merging()` is 1, so a merge records exactly the clock it was
 * given. Triggers are rebuilt on every start: a schema reload may have added columns.
 */
export function makeCrr(db: Db, table: CrrTable): void {
  const t = quote(table.name);
  const pksT = quote(table.pksTable);
  const clockT = quote(table.clockTable);
  const pkCols = table.pks.map(quote).join(', ');
  db.exec(`
    CREATE TABLE IF NOT EXISTS ${pksT} (__corro_key INTEGER PRIMARY KEY AUTOINCREMENT, ${pkCols});
    CREATE UNIQUE INDEX IF NOT EXISTS ${quote(`${table.pksTable}_pk`)} ON ${pksT} (${pkCols});
    CREATE TABLE IF NOT EXISTS ${clockT} (
      key INTEGER NOT NULL,
      cid TEXT NOT NULL,
      col_version INTEGER NOT NULL,
      db_version INTEGER NOT NULL,
      site INTEGER NOT NULL,
      seq INTEGER NOT NULL,
      ts INTEGER NOT NULL,
      PRIMARY KEY (key, cid)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS ${quote(`${table.clockTable}_version`)} ON ${clockT} (site, db_version, seq);
  `);
  for (const kind of ['insert', 'update', 'update_pk', 'delete']) {
    db.exec(`DROP TRIGGER IF EXISTS ${quote(`__corro_${kind}_${table.name}`)}`);
  }
  const samePk = table.pks.map((col) => `NEW.${quote(col)} IS OLD.${quote(col)}`).join(' AND ');
  // A table of keys only has nothing an update keeping its key could change (and SQLite refuses
  // a trigger with an empty body).
  const valueUpdate = table.columns.length
    ? `CREATE TRIGGER ${quote(`__corro_update_${table.name}`)} AFTER UPDATE ON ${t}
    WHEN corro_merging() = 0 AND ${samePk} BEGIN ${updated(table)} END;`
    : '';
  db.exec(`
    CREATE TRIGGER ${quote(`__corro_insert_${table.name}`)} AFTER INSERT ON ${t}
    WHEN corro_merging() = 0 BEGIN ${created(table, 'NEW')} END;
    ${valueUpdate}
    CREATE TRIGGER ${quote(`__corro_update_pk_${table.name}`)} AFTER UPDATE ON ${t}
    WHEN corro_merging() = 0 AND NOT (${samePk}) BEGIN ${deleted(table, 'OLD')} ${created(table, 'NEW')} END;
    CREATE TRIGGER ${quote(`__corro_delete_${table.name}`)} AFTER DELETE ON ${t}
    WHEN corro_merging() = 0 BEGIN ${deleted(table, 'OLD')} END;
  `);
}

/** The key of the row `ref` (NEW or OLD) in the pk-lookup table. */
export function keyOf(table: CrrTable, ref: string): string {
  const where = table.pks.map((col) => `${quote(col)} IS ${ref}.${quote(col)}`).join(' AND ');
  return `(SELECT __corro_key FROM ${quote(table.pksTable)} WHERE ${where})`;
}

/**
 * A local clock entry: this transaction's version (the function also learns which table the
 * transaction touched), the next seq, the local site (ordinal 0).
 */
function clockValues(table: CrrTable, key: string, cid: string, colVersion: string): string {
  return `${key}, ${literal(cid)}, ${colVersion}, corro_db_version(${literal(table.name)}), 0, corro_seq(), corro_ts()`;
}

const localClock =
  'db_version = excluded.db_version, site = 0, seq = excluded.seq, ts = excluded.ts';

function created(table: CrrTable, ref: string): string {
  const clockT = quote(table.clockTable);
  const key = keyOf(table, ref);
  const pkRefs = table.pks.map((col) => `${ref}.${quote(col)}`).join(', ');
  // An insert makes the row alive: an even (deleted) or missing causal length becomes odd. A
  // re-insert of a live row (INSERT OR REPLACE) leaves the sentinel alone, as cr-sqlite does: its
  // causal length does not change, and rewriting its clock would make the writer's sentinel differ
  // for good from every replica's, which settle equal lengths by site id.
  let sql = `
    INSERT INTO ${quote(table.pksTable)} (${table.pks.map(quote).join(', ')}) VALUES (${pkRefs}) ON CONFLICT DO NOTHING;
    INSERT INTO ${clockT} VALUES (${clockValues(table, key, SENTINEL, '1')})
      ON CONFLICT DO UPDATE SET col_version = col_version + 1, ${localClock} WHERE col_version % 2 = 0;`;
  for (const col of table.columns) {
    sql += `
    INSERT INTO ${clockT} VALUES (${clockValues(table, key, col, '1')})
      ON CONFLICT DO UPDATE SET col_version = col_version + 1, ${localClock};`;
  }
  return sql;
}

function updated(table: CrrTable): string {
  const clockT = quote(table.clockTable);
  const key = keyOf(table, 'NEW');
  // Only a column whose value really changed gets a new version.
  return table.columns
    .map(
      (col) => `
    INSERT INTO ${clockT} SELECT ${clockValues(table, key, col, '1')} WHERE NEW.${quote(col)} IS NOT OLD.${quote(col)}
      ON CONFLICT DO UPDATE SET col_version = col_version + 1, ${localClock};`,
    )
    .join('');
}

function deleted(table: CrrTable, ref: string): string {
  const clockT = quote(table.clockTable);
  const key = keyOf(table, ref);
  // A delete makes the causal length even and drops the column clocks: a later insert starts over.
  return `
    INSERT INTO ${clockT} VALUES (${clockValues(table, key, SENTINEL, '2')})
      ON CONFLICT DO UPDATE SET col_version = col_version + (col_version % 2 = 1), ${localClock};
    DELETE FROM ${clockT} WHERE key = ${key} AND cid != '${SENTINEL}';`;
}

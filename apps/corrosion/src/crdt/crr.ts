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
 * The one-row table of the open local write (its version, next seq and time, and whether its
 * changes must be read back: see `insertedFunction`) and of whether a merge runs. The triggers
 * read it in SQL rather than calling into JavaScript per clock row; outside a local write its
 * version is NULL, and a trigger that fires then refuses the write (so a plain SQLite client
 * cannot write rows that would never replicate). It holds nothing across restarts.
 */
export const writeStateTable = '__corro_write';

export function makeWriteState(db: Db): void {
  db.exec(`
    DROP TABLE IF EXISTS ${writeStateTable};
    CREATE TABLE ${writeStateTable} (
      id INTEGER PRIMARY KEY CHECK (id = 0), db_version INTEGER, seq INTEGER NOT NULL,
      ts INTEGER NOT NULL, read_back INTEGER NOT NULL, merging INTEGER NOT NULL);
    INSERT INTO ${writeStateTable} VALUES (0, NULL, 0, 0, 0, 0);
  `);
}

/**
 * The SQL function the insert trigger calls once per row with (table, next seq, whether the key
 * is new, the pk values, the column values): a row whose key is new has no clock yet, so its
 * changes are known without reading them back (version 1 of every column and causal length 1).
 */
export const insertedFunction = 'corro_inserted';

/** The first statement of every trigger: a write outside a local write or a merge is refused. */
const guard = `SELECT RAISE(ABORT, 'a CRR table was written outside a transaction')
    FROM ${writeStateTable} WHERE db_version IS NULL;`;

/**
 * Makes `table` a CRR: a pk-lookup table (pk values → a small integer key), a clock table
 * (key, cid, col_version, db_version, site ordinal, seq, ts) whose sentinel row holds the
 * causal length (odd: alive, even: deleted), and AFTER triggers that record local writes, each
 * with one clock statement per row written (all its clock rows at once). The triggers stand
 * aside while a merge runs, so a merge records exactly the clock it was given. Triggers are
 * rebuilt on every start: a schema reload may have added columns.
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
  const changed = table.columns.map((col) => `NEW.${quote(col)} IS NOT OLD.${quote(col)}`);
  const local = `(SELECT merging FROM ${writeStateTable}) = 0`;
  // An update that keeps the key and changes no value records nothing (and a table of keys only
  // has no value to change).
  const valueUpdate = table.columns.length
    ? `CREATE TRIGGER ${quote(`__corro_update_${table.name}`)} AFTER UPDATE ON ${t}
    WHEN ${local} AND ${samePk} AND (${changed.join(' OR ')}) BEGIN ${guard} ${updated(table)} END;`
    : '';
  const newRefs = [...table.pks, ...table.columns].map((col) => `NEW.${quote(col)}`).join(', ');
  const newKey = `NOT EXISTS (SELECT 1 FROM ${quote(table.pksTable)} WHERE ${keyWhere(table, 'NEW')})`;
  db.exec(`
    CREATE TRIGGER ${quote(`__corro_insert_${table.name}`)} AFTER INSERT ON ${t}
    WHEN ${local} BEGIN ${guard}
    SELECT ${insertedFunction}(${literal(table.name)}, seq, ${newKey}, ${newRefs}) FROM ${writeStateTable};
    ${created(table, 'NEW', false)} END;
    ${valueUpdate}
    CREATE TRIGGER ${quote(`__corro_update_pk_${table.name}`)} AFTER UPDATE ON ${t}
    WHEN ${local} AND NOT (${samePk}) BEGIN ${guard} ${deleted(table, 'OLD')} ${created(table, 'NEW', true)} END;
    CREATE TRIGGER ${quote(`__corro_delete_${table.name}`)} AFTER DELETE ON ${t}
    WHEN ${local} BEGIN ${guard} ${deleted(table, 'OLD')} END;
  `);
}

/** The key of the row `ref` (NEW or OLD) in the pk-lookup table. */
export function keyOf(table: CrrTable, ref: string): string {
  return `(SELECT __corro_key FROM ${quote(table.pksTable)} WHERE ${keyWhere(table, ref)})`;
}

function keyWhere(table: CrrTable, ref: string): string {
  return table.pks.map((col) => `${quote(col)} IS ${ref}.${quote(col)}`).join(' AND ');
}

/**
 * Writes a local clock row per entry of `cids` (a SELECT of `cid` and `n`, the entry's offset
 * from the write's next seq): this write's version, the local site (ordinal 0), its time.
 */
function clockRows(table: CrrTable, key: string, cids: string, colVersion: string): string {
  return `INSERT INTO ${quote(table.clockTable)} (key, cid, col_version, db_version, site, seq, ts)
    SELECT ${key}, c.cid, ${colVersion}, w.db_version, 0, w.seq + c.n, w.ts
    FROM ${writeStateTable} w, (${cids}) c WHERE true`;
}

const localClock =
  'db_version = excluded.db_version, site = 0, seq = excluded.seq, ts = excluded.ts';

/** Uses `count` seqs; `readBack`: the write's changes are no longer all known (see above). */
const nextSeq = (count: string | number, readBack: boolean) =>
  `UPDATE ${writeStateTable} SET seq = seq + ${count}${readBack ? ', read_back = 1' : ''};`;

function created(table: CrrTable, ref: string, readBack: boolean): string {
  const key = keyOf(table, ref);
  const pkRefs = table.pks.map((col) => `${ref}.${quote(col)}`).join(', ');
  const cids = [SENTINEL, ...table.columns]
    .map((cid, at) => `SELECT ${literal(cid)} AS cid, ${at} AS n`)
    .join(' UNION ALL ');
  // An insert makes the row alive: an even (deleted) or missing causal length becomes odd. A
  // re-insert of a live row (INSERT OR REPLACE) leaves the sentinel alone, as cr-sqlite does: its
  // causal length does not change, and rewriting its clock would make the writer's sentinel differ
  // for good from every replica's, which settle equal lengths by site id. Its seq is used all the
  // same, so a version's seqs do not depend on what the row held before.
  return `
    INSERT INTO ${quote(table.pksTable)} (${table.pks.map(quote).join(', ')}) VALUES (${pkRefs}) ON CONFLICT DO NOTHING;
    ${clockRows(table, key, cids, '1')}
      ON CONFLICT DO UPDATE SET col_version = col_version + 1, ${localClock}
      WHERE excluded.cid != '${SENTINEL}' OR col_version % 2 = 0;
    ${nextSeq(1 + table.columns.length, readBack)}`;
}

function updated(table: CrrTable): string {
  const key = keyOf(table, 'NEW');
  // Only a column whose value really changed gets a new version, with the next seq.
  const changed = table.columns.map((col) => `(NEW.${quote(col)} IS NOT OLD.${quote(col)})`);
  const cids = table.columns
    .map(
      (col, at) =>
        `SELECT ${literal(col)} AS cid, ${at === 0 ? '0' : changed.slice(0, at).join(' + ')} AS n WHERE ${changed[at]}`,
    )
    .join(' UNION ALL ');
  return `
    ${clockRows(table, key, cids, '1')}
      ON CONFLICT DO UPDATE SET col_version = col_version + 1, ${localClock};
    ${nextSeq(`(${changed.join(' + ')})`, true)}`;
}

function deleted(table: CrrTable, ref: string): string {
  const key = keyOf(table, ref);
  // A delete makes the causal length even and drops the column clocks: a later insert starts over.
  return `
    ${clockRows(table, key, `SELECT '${SENTINEL}' AS cid, 0 AS n`, '2')}
      ON CONFLICT DO UPDATE SET col_version = col_version + (col_version % 2 = 1), ${localClock};
    DELETE FROM ${quote(table.clockTable)} WHERE key = ${key} AND cid != '${SENTINEL}';
    ${nextSeq(1, true)}`;
}

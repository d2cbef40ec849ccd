import type { Database as Db } from 'better-sqlite3';

/** The cid of a row's causal-length entry in the clock table (cr-sqlite's sentinel). */
export const SENTINEL = '-1';

/** What the CRDT layer knows of one replicated table. */
export interface CrrTable {
  name: string;
  /** Primary-key columns in key order. */
  pks: string[];
  /** Their declared types, which the clock, log and journal tables' copies of them take. */
  pkTypes: string[];
  /** Every other column. */
  columns: string[];
  /** Per pk and cid: the clock of a column or of the row's causal length (the sentinel). */
  clockTable: string;
  /** The per-row version log: `(site, db_version, pk)` for every row a version wrote. */
  logTable: string;
  /** The journal of the rows the open local write inserted (see local-writes.ts). */
  journalTable: string;
}

export const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
export const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;

/**
 * The name of a pk column's copy in the clock, log, journal and stage tables: prefixed, so a
 * user's pk column named `site` or `cid` cannot meet a metadata column.
 */
export const pkCopy = (column: string) => quote(`pk_${column}`);

/** `NEW."a", NEW."b"`: a row's pk values as a trigger refers to them (`ref`: NEW or OLD). */
export const refValues = (table: CrrTable, ref: string) =>
  table.pks.map((col) => `${ref}.${quote(col)}`);

/** `alias."pk_a", …`: the pk copies of a row of a metadata table. */
export const copyValues = (table: CrrTable, alias: string) =>
  table.pks.map((col) => `${alias}.${pkCopy(col)}`);

/** `alias."pk_a" = v0 AND …`: the row of a metadata table whose pk is `values`. */
export function pkIs(table: CrrTable, alias: string, values: string[]): string {
  return table.pks.map((col, at) => `${alias}.${pkCopy(col)} = ${values[at]}`).join(' AND ');
}

export function describeTable(db: Db, name: string): CrrTable {
  const cols = db.prepare('SELECT name, type, pk FROM pragma_table_info(?)').all(name) as {
    name: string;
    type: string;
    pk: number;
  }[];
  const pks = cols.filter((col) => col.pk > 0).sort((a, b) => a.pk - b.pk);
  return {
    name,
    pks: pks.map((col) => col.name),
    pkTypes: pks.map((col) => col.type),
    columns: cols.filter((col) => col.pk === 0).map((col) => col.name),
    clockTable: `__corro_clock_${name}`,
    logTable: `__corro_log_${name}`,
    journalTable: `__corro_journal_${name}`,
  };
}

/** `pk_a TYPE, pk_b TYPE`: the pk copies' definitions. */
export const pkCopyColumns = (table: CrrTable) =>
  table.pks.map((col, at) => `${pkCopy(col)} ${table.pkTypes[at] ?? ''}`).join(', ');

/**
 * `SELECT 'a' AS cid, 1 AS n UNION ALL …`: the table's columns with their 1-based place, the
 * offset of an implied column clock's seq from its sentinel's (see `makeCrr`).
 */
export function columnPlaces(table: CrrTable): string {
  return table.columns
    .map((cid, at) => `SELECT ${literal(cid)} AS cid, ${at + 1} AS n`)
    .join(' UNION ALL ');
}

/** Every clock of a row: the sentinel at place 0, then `columnPlaces`. */
export function clockPlaces(table: CrrTable): string {
  return [`SELECT '${SENTINEL}' AS cid, 0 AS n`, columnPlaces(table)]
    .filter(Boolean)
    .join(' UNION ALL ');
}

/**
 * The one-row table of the open local write (its version, next seq and time, and whether its
 * changes must be read back) and of whether a merge runs. The triggers read it in SQL rather than
 * calling into JavaScript; outside a local write its version is NULL and a trigger that fires
 * then raises `outsideWriteMessage` (see `refusedOutside`), so a plain SQLite client cannot write
 * rows that would never replicate. It holds nothing across restarts.
 */
export const writeStateTable = '__corro_write';

export const outsideWriteMessage = 'a CRR table was written outside a transaction';

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
 * True but in a merge: the triggers record local writes, and fire for any other writer too, to be
 * refused (see `writeStateTable`).
 */
export const notMerging = `(SELECT merging FROM ${writeStateTable}) = 0`;

/**
 * A condition on the write state (as `alias`) that raises `outsideWriteMessage` outside a local
 * write. RAISE, not a CHECK constraint: a statement's conflict clause (INSERT OR IGNORE) would
 * override a CHECK's failure in the triggers it fires, and the row would be written unrecorded.
 */
export const refusedOutside = (alias: string) =>
  `(${alias}.db_version IS NOT NULL OR RAISE(ABORT, ${literal(outsideWriteMessage)}))`;

/**
 * Makes `table` a CRR: a clock table keyed by (pk, cid) whose sentinel row (cid `-1`) holds the
 * row's causal length (odd: alive, even: deleted), the per-row version log, and the triggers
 * recording local writes (local-writes.ts).
 *
 * A row inserted under a key this node has never seen gets its sentinel alone, `implied` set to
 * the number of columns: the clock of its i-th column is implied by the sentinel's (version 1,
 * the same db_version, site and time, seq + i), so a fresh row writes two metadata entries (its
 * clock and its log entry) instead of one per column. Before anything writes a clock of such a
 * row — an update, a re-insert, a merge — its implied clocks are written out (`materialized`).
 * `implied` counts columns rather than flagging them so a column added later is not implied.
 *
 * A database of the layout before (clocks keyed through a pk-lookup table) is moved to this one
 * on its first start.
 */
export function makeCrr(db: Db, table: CrrTable): void {
  migrateKeyedLayout(db, table);
  db.exec(clockTableSql(table));
  makeLog(db, table);
}

const clockTableSql = (table: CrrTable) => `
  CREATE TABLE IF NOT EXISTS ${quote(table.clockTable)} (
    ${pkCopyColumns(table)},
    cid TEXT NOT NULL,
    col_version INTEGER NOT NULL,
    db_version INTEGER NOT NULL,
    site INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    implied INTEGER NOT NULL,
    PRIMARY KEY (${table.pks.map(pkCopy).join(', ')}, cid)
  ) WITHOUT ROWID`;

const logTableSql = (table: CrrTable) => `
  CREATE TABLE IF NOT EXISTS ${quote(table.logTable)} (
    site INTEGER NOT NULL, db_version INTEGER NOT NULL, ${pkCopyColumns(table)},
    PRIMARY KEY (site, db_version, ${table.pks.map(pkCopy).join(', ')})
  ) WITHOUT ROWID`;

/**
 * The per-row version log: one `(site, db_version, pk)` entry per row a version wrote, the index
 * by which a version's changes are found (to read back a local write, to serve a version to a
 * peer). An entry outlives the clocks it pointed at when a later version overwrites them all; a
 * read finds no clock of that version under it and skips it, and `Crdt.compactLog` deletes such
 * entries a bounded slice at a time. A database made before the log gets it built from its clocks.
 */
function makeLog(db: Db, table: CrrTable): void {
  if (hasTable(db, table.logTable)) return;
  db.exec(logTableSql(table));
  const pks = table.pks.map(pkCopy).join(', ');
  db.exec(`INSERT OR IGNORE INTO ${quote(table.logTable)} SELECT DISTINCT site, db_version, ${pks}
    FROM ${quote(table.clockTable)} WHERE db_version > 0`);
}

const hasTable = (db: Db, name: string) =>
  db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
  undefined;

/**
 * Moves a database of the layout before this one — clocks and log entries keyed by a small
 * integer from a pk-lookup table `__corro_pks_<table>`, triggers in the file — to clocks and log
 * entries keyed by the pk itself, every clock kept as it was.
 */
function migrateKeyedLayout(db: Db, table: CrrTable): void {
  const pksName = `__corro_pks_${table.name}`;
  if (!hasTable(db, pksName)) return;
  // Its triggers name the pk table; local-writes.ts makes them anew.
  for (const kind of ['insert', 'update', 'update_pk', 'delete']) {
    db.exec(`DROP TRIGGER IF EXISTS ${quote(`__corro_${kind}_${table.name}`)}`);
  }
  const pksT = quote(pksName);
  const pkValues = table.pks.map((col) => `p.${quote(col)}`).join(', ');
  const oldClock = quote(`${table.clockTable}_keyed`);
  const oldLog = quote(`${table.logTable}_keyed`);
  const hadLog = hasTable(db, table.logTable);
  db.exec(`DROP INDEX IF EXISTS ${quote(`${table.clockTable}_version`)};
    ALTER TABLE ${quote(table.clockTable)} RENAME TO ${oldClock};
    ${hadLog ? `ALTER TABLE ${quote(table.logTable)} RENAME TO ${oldLog};` : ''}`);
  db.exec(`${clockTableSql(table)};
    INSERT INTO ${quote(table.clockTable)}
      SELECT ${pkValues}, c.cid, c.col_version, c.db_version, c.site, c.seq, c.ts, 0
      FROM ${oldClock} c JOIN ${pksT} p ON p.__corro_key = c.key;
    DROP TABLE ${oldClock};`);
  if (hadLog) {
    db.exec(`${logTableSql(table)};
      INSERT INTO ${quote(table.logTable)}
        SELECT g.site, g.db_version, ${pkValues} FROM ${oldLog} g JOIN ${pksT} p ON p.__corro_key = g.key;
      DROP TABLE ${oldLog};`);
  }
  db.exec(`DROP TABLE ${pksT}`);
}

/**
 * Writes out the implied column clocks of the rows `rows` picks (a condition on an alias of the
 * clock table) if they have any (see `makeCrr`): the two statements to run before anything writes
 * a clock of a row (none for a table without columns).
 */
export function materialized(table: CrrTable, rows: (alias: string) => string): string[] {
  if (table.columns.length === 0) return []; // nothing to imply
  const clockT = quote(table.clockTable);
  return [
    `INSERT INTO ${clockT} SELECT ${copyValues(table, 's').join(', ')}, c.cid, 1,
      s.db_version, s.site, s.seq + c.n, s.ts, 0
    FROM ${clockT} s, (${columnPlaces(table)}) c
    WHERE ${rows('s')} AND s.cid = '${SENTINEL}' AND c.n <= s.implied`,
    `UPDATE ${clockT} SET implied = 0 WHERE ${rows(clockT)} AND cid = '${SENTINEL}' AND implied > 0`,
  ];
}

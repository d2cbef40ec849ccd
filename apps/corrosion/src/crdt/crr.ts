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
  /** The per-row version log: `(site, db_version, key)` for every row a version wrote. */
  logTable: string;
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
    logTable: `__corro_log_${name}`,
  };
}

/**
 * The one-row table of the open local write (its version, next seq and time, and whether its
 * changes must be read back: see `created`) and of whether a merge runs. The triggers read it in
 * SQL rather than calling into JavaScript; outside a local write its version is NULL, and a
 * trigger that fires then fails on the CHECK when it takes its seqs (so a plain SQLite client
 * cannot write rows that would never replicate). It holds nothing across restarts.
 */
export const writeStateTable = '__corro_write';

export const outsideWriteMessage = 'a CRR table was written outside a transaction';

export function makeWriteState(db: Db): void {
  db.exec(`
    DROP TABLE IF EXISTS ${writeStateTable};
    CREATE TABLE ${writeStateTable} (
      id INTEGER PRIMARY KEY CHECK (id = 0), db_version INTEGER, seq INTEGER NOT NULL,
      ts INTEGER NOT NULL, read_back INTEGER NOT NULL, merging INTEGER NOT NULL,
      CONSTRAINT ${quote(outsideWriteMessage)} CHECK (db_version IS NOT NULL OR seq = 0));
    INSERT INTO ${writeStateTable} VALUES (0, NULL, 0, 0, 0, 0);
  `);
}

/**
 * Makes `table` a CRR: a pk-lookup table (pk values → a small integer key), a clock table
 * (key, cid, col_version, db_version, site ordinal, seq, ts) whose sentinel row holds the
 * causal length (odd: alive, even: deleted), the per-row version log, and AFTER triggers that
 * record local writes, each with one clock statement per row written (all its clock rows at
 * once) and one log entry. The triggers stand aside while a merge runs, so a merge records
 * exactly the clock it was given. Triggers are rebuilt on every start: a schema reload may have
 * added columns.
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
  `);
  makeLog(db, table);
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
    WHEN ${local} AND ${samePk} AND (${changed.join(' OR ')}) BEGIN ${updated(table)} END;`
    : '';
  db.exec(`
    CREATE TRIGGER ${quote(`__corro_insert_${table.name}`)} AFTER INSERT ON ${t}
    WHEN ${local} BEGIN ${created(table, 'NEW', false)} END;
    ${valueUpdate}
    CREATE TRIGGER ${quote(`__corro_update_pk_${table.name}`)} AFTER UPDATE ON ${t}
    WHEN ${local} AND NOT (${samePk}) BEGIN ${deleted(table, 'OLD')} ${created(table, 'NEW', true)} END;
    CREATE TRIGGER ${quote(`__corro_delete_${table.name}`)} AFTER DELETE ON ${t}
    WHEN ${local} BEGIN ${deleted(table, 'OLD')} END;
  `);
}

/**
 * The per-row version log: one `(site, db_version, key)` entry per row a version wrote, the
 * index by which a version's changes are found (to read back a local write, to serve a version
 * to a peer). It replaced an index entry per clock row: a local write of a 5-column row makes one
 * log entry instead of five index entries. An entry outlives the clocks it pointed at when a later
 * version overwrites them all; a read finds no clock of that version under it and skips it, and
 * `Crdt.compactLog` deletes such entries a bounded slice at a time. A database made before the
 * log gets it built from its clocks (and the old clock index dropped) on the first start.
 */
function makeLog(db: Db, table: CrrTable): void {
  const logT = quote(table.logTable);
  const exists = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
    .get(table.logTable);
  db.exec(`
    CREATE TABLE IF NOT EXISTS ${logT} (
      site INTEGER NOT NULL, db_version INTEGER NOT NULL, key INTEGER NOT NULL,
      PRIMARY KEY (site, db_version, key)
    ) WITHOUT ROWID;
    DROP INDEX IF EXISTS ${quote(`${table.clockTable}_version`)};
  `);
  if (!exists) {
    db.exec(`INSERT OR IGNORE INTO ${logT} SELECT DISTINCT site, db_version, key
      FROM ${quote(table.clockTable)} WHERE db_version > 0`);
  }
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
 * from the first of the `count` seqs the trigger took just before): this write's version, the
 * local site (ordinal 0), its time.
 */
function clockRows(
  table: CrrTable,
  key: string,
  cids: string,
  colVersion: string,
  count: string | number,
): string {
  return `INSERT INTO ${quote(table.clockTable)} (key, cid, col_version, db_version, site, seq, ts)
    SELECT ${key}, c.cid, ${colVersion}, w.db_version, 0, w.seq - ${count} + c.n, w.ts
    FROM ${writeStateTable} w, (${cids}) c WHERE true`;
}

/** The local write's log entry for the row of `key`. */
function logRow(table: CrrTable, key: string): string {
  // An upsert, not INSERT OR IGNORE: an outer INSERT OR REPLACE or upsert would override OR IGNORE.
  return `INSERT INTO ${quote(table.logTable)} (site, db_version, key)
    SELECT 0, db_version, ${key} FROM ${writeStateTable} WHERE true ON CONFLICT DO NOTHING;`;
}

const localClock =
  'db_version = excluded.db_version, site = 0, seq = excluded.seq, ts = excluded.ts';

/**
 * Takes `count` seqs, first in every trigger (outside a local write the CHECK fails here, before
 * anything is written); `readBack`: an SQL condition under which the write's changes can no
 * longer be told from its rows alone (see `created`).
 */
const nextSeq = (count: string | number, readBack: string) =>
  `UPDATE ${writeStateTable} SET seq = seq + ${count}, read_back = read_back OR ${readBack};`;

function created(table: CrrTable, ref: string, readBack: boolean): string {
  const key = keyOf(table, ref);
  const pkRefs = table.pks.map((col) => `${ref}.${quote(col)}`).join(', ');
  const cids = [SENTINEL, ...table.columns]
    .map((cid, at) => `SELECT ${literal(cid)} AS cid, ${at} AS n`)
    .join(' UNION ALL ');
  const count = 1 + table.columns.length;
  // A row inserted under a key new to this node has no clock, so its changes are certain (causal
  // length 1, version 1 of every column, seqs from its sentinel's): while every row of a write is
  // such a row, the write's changes are built from the rows (`VersionRead.readFresh`), else read
  // back with their clocks. An insert makes the row alive: an even (deleted) or missing causal
  // length becomes odd. A re-insert of a live row (INSERT OR REPLACE) leaves the sentinel alone,
  // as cr-sqlite does: its causal length does not change, and rewriting its clock would make the
  // writer's sentinel differ for good from every replica's, which settle equal lengths by site id.
  // Its seq is used all the same, so a version's seqs do not depend on what the row held before.
  return `
    ${nextSeq(count, readBack ? '1' : `EXISTS ${key}`)}
    INSERT INTO ${quote(table.pksTable)} (${table.pks.map(quote).join(', ')}) VALUES (${pkRefs}) ON CONFLICT DO NOTHING;
    ${clockRows(table, key, cids, '1', count)}
      ON CONFLICT DO UPDATE SET col_version = col_version + 1, ${localClock}
      WHERE excluded.cid != '${SENTINEL}' OR col_version % 2 = 0;
    ${logRow(table, key)}`;
}

function updated(table: CrrTable): string {
  const key = keyOf(table, 'NEW');
  // Only a column whose value really changed gets a new version, with the next seq.
  const changed = table.columns.map((col) => `(NEW.${quote(col)} IS NOT OLD.${quote(col)})`);
  const count = `(${changed.join(' + ')})`;
  const cids = table.columns
    .map(
      (col, at) =>
        `SELECT ${literal(col)} AS cid, ${at === 0 ? '0' : changed.slice(0, at).join(' + ')} AS n WHERE ${changed[at]}`,
    )
    .join(' UNION ALL ');
  return `
    ${nextSeq(count, '1')}
    ${clockRows(table, key, cids, '1', count)}
      ON CONFLICT DO UPDATE SET col_version = col_version + 1, ${localClock};
    ${logRow(table, key)}`;
}

function deleted(table: CrrTable, ref: string): string {
  const key = keyOf(table, ref);
  // A delete makes the causal length even and drops the column clocks: a later insert starts over.
  return `
    ${nextSeq(1, '1')}
    ${clockRows(table, key, `SELECT '${SENTINEL}' AS cid, 0 AS n`, '2', 1)}
      ON CONFLICT DO UPDATE SET col_version = col_version + (col_version % 2 = 1), ${localClock};
    DELETE FROM ${quote(table.clockTable)} WHERE key = ${key} AND cid != '${SENTINEL}';
    ${logRow(table, key)}`;
}

import type { Database as Db, Statement } from 'better-sqlite3';
import type { Change } from './changes.js';
import type { RowChange } from './crdt.js';
import {
  type CrrTable,
  columnPlaces,
  copyValues,
  literal,
  localWrite,
  materialized,
  pkCopy,
  pkCopyColumns,
  pkIs,
  quote,
  refValues,
  SENTINEL,
  writeStateTable,
} from './crr.js';
import { packColumns, type SqlValue } from './pack.js';
import { freshChange } from './version-read.js';

/**
 * How a local write records its clocks. An insert only notes the row's pk in the table's TEMP
 * journal (with whether the row had a clock before); at the end of the write — or before the
 * first update or delete, so every clock is written in statement order — the journal is flushed
 * set-wise: a row new to this node gets its sentinel with implied column clocks (see `makeCrr`),
 * a re-inserted one what an insert of a known row writes, every one a log entry, their seqs
 * numbered in the journal's order. One statement per inserted row instead of one per clock
 * statement: what brought a local write of new rows to 0.4 of a plain insert. Updates and deletes
 * record their clocks row by row. While every row a write touched was inserted under a new key,
 * its changes are certain (causal length 1, version 1 of every column) and are built from the
 * journal and the rows alone (`LocalJournal.build`), else read back with their clocks.
 */
export function makeLocalWrites(db: Db, table: CrrTable): void {
  const name = table.name;
  const t = `main.${quote(name)}`;
  const journalT = quote(table.journalTable);
  const trigger = (kind: string) => quote(`__corro_${kind}_${name}`);
  for (const kind of ['insert', 'flush_update', 'flush_delete', 'update', 'update_pk', 'delete']) {
    db.exec(`DROP TRIGGER IF EXISTS temp.${trigger(kind)}`);
  }
  const pks = table.pks.map(pkCopy).join(', ');
  db.exec(`DROP TABLE IF EXISTS temp.${journalT};
    CREATE TEMP TABLE ${journalT} (${pkCopyColumns(table)}, known INTEGER NOT NULL, UNIQUE (${pks}));
    CREATE INDEX temp.${quote(`${table.journalTable}_known`)} ON ${journalT} (known) WHERE known = 1;`);
  const samePk = table.pks.map((col) => `NEW.${quote(col)} IS OLD.${quote(col)}`).join(' AND ');
  const changed = table.columns.map((col) => `NEW.${quote(col)} IS NOT OLD.${quote(col)}`);
  // An update that keeps the key and changes no value records nothing (and a table of keys only
  // has no value to change).
  const valueUpdate = table.columns.length
    ? `CREATE TEMP TRIGGER ${trigger('update')} AFTER UPDATE ON ${t}
    WHEN ${localWrite} AND ${samePk} AND (${changed.join(' OR ')}) BEGIN ${updated(table)} END;`
    : '';
  const flush = `${flushStatements(table, '1').join(';\n')}; DELETE FROM ${journalT};`;
  db.exec(`
    CREATE TEMP TRIGGER ${trigger('insert')} AFTER INSERT ON ${t}
    WHEN ${localWrite} BEGIN ${journaled(table)} END;
    CREATE TEMP TRIGGER ${trigger('flush_update')} BEFORE UPDATE ON ${t}
    WHEN EXISTS (SELECT 1 FROM ${journalT}) BEGIN ${flush} END;
    CREATE TEMP TRIGGER ${trigger('flush_delete')} BEFORE DELETE ON ${t}
    WHEN EXISTS (SELECT 1 FROM ${journalT}) BEGIN ${flush} END;
    ${valueUpdate}
    CREATE TEMP TRIGGER ${trigger('update_pk')} AFTER UPDATE ON ${t}
    WHEN ${localWrite} AND NOT (${samePk}) BEGIN ${deleted(table)} ${journaled(table)} END;
    CREATE TEMP TRIGGER ${trigger('delete')} AFTER DELETE ON ${t}
    WHEN ${localWrite} BEGIN ${deleted(table)} END;
  `);
}

/**
 * The journal entry of the row NEW, once a write (an upsert, not INSERT OR IGNORE: an outer
 * INSERT OR REPLACE would override OR IGNORE, and REPLACE would move the entry to the end).
 */
function journaled(table: CrrTable): string {
  const values = refValues(table, 'NEW');
  return `INSERT INTO ${quote(table.journalTable)} (${table.pks.map(pkCopy).join(', ')}, known)
    VALUES (${values.join(', ')}, EXISTS (SELECT 1 FROM ${quote(table.clockTable)} c
      WHERE ${pkIs(table, 'c', values)} AND c.cid = '${SENTINEL}')) ON CONFLICT DO NOTHING;`;
}

/**
 * Writes the journaled rows' clocks and log entries and takes their seqs (`1 + columns` a row, in
 * the journal's order, from the write's next seq); `readBack`: the write state's new `read_back`.
 */
function flushStatements(table: CrrTable, readBack: string): string[] {
  const clockT = quote(table.clockTable);
  const journalT = quote(table.journalTable);
  const width = 1 + table.columns.length;
  const jPks = copyValues(table, 'j').join(', ');
  const clockColumns = `${table.pks.map(pkCopy).join(', ')}, cid, col_version, db_version, site, seq, ts, implied`;
  const seqOf = `w.seq + (j.rowid - (SELECT min(rowid) FROM ${journalT})) * ${width}`;
  const cids = [`SELECT '${SENTINEL}' AS cid, 0 AS n`, columnPlaces(table)]
    .filter(Boolean)
    .join(' UNION ALL ');
  const knownRows = (alias: string) =>
    `(${copyValues(table, alias).join(', ')}) IN (SELECT ${jPks} FROM ${journalT} j WHERE j.known = 1)`;
  return [
    // A re-inserted row: its implied clocks written out, then what an insert of a known row
    // writes. An insert makes the row alive: an even (deleted) causal length becomes odd. A
    // re-insert of a live row (INSERT OR REPLACE) bumps every column but leaves the sentinel alone,
    // as cr-sqlite does: its causal length does not change, and rewriting its clock would make the
    // writer's sentinel differ for good from every replica's, which settle equal lengths by site
    // id. Its seq is taken all the same, so a version's seqs do not depend on what a row held.
    ...materialized(table, knownRows),
    `INSERT INTO ${clockT} (${clockColumns})
      SELECT ${jPks}, c.cid, 1, w.db_version, 0, ${seqOf} + c.n, w.ts, 0
      FROM ${journalT} j, ${writeStateTable} w, (${cids}) c WHERE j.known = 1
      ON CONFLICT DO UPDATE SET col_version = col_version + 1, db_version = excluded.db_version,
        site = 0, seq = excluded.seq, ts = excluded.ts
      WHERE excluded.cid != '${SENTINEL}' OR col_version % 2 = 0`,
    // A row new to this node: its sentinel, its column clocks implied.
    `INSERT INTO ${clockT} (${clockColumns})
      SELECT ${jPks}, '${SENTINEL}', 1, w.db_version, 0, ${seqOf}, w.ts, ${table.columns.length}
      FROM ${journalT} j, ${writeStateTable} w WHERE j.known = 0`,
    `INSERT INTO ${quote(table.logTable)} (site, db_version, ${table.pks.map(pkCopy).join(', ')})
      SELECT 0, w.db_version, ${jPks} FROM ${journalT} j, ${writeStateTable} w WHERE true
      ON CONFLICT DO NOTHING`,
    `UPDATE ${writeStateTable} SET seq = seq + ${width} * (SELECT count(*) FROM ${journalT}),
      read_back = ${readBack}`,
  ];
}

/** Writes the local clock of every entry of `cids` (a SELECT of `cid` and `n`, its seq offset). */
function clockRows(
  table: CrrTable,
  ref: string,
  cids: string,
  colVersion: number,
  count: string | number,
): string {
  return `INSERT INTO ${quote(table.clockTable)}
    SELECT ${refValues(table, ref).join(', ')}, c.cid, ${colVersion}, w.db_version, 0, w.seq - ${count} + c.n, w.ts, 0
    FROM ${writeStateTable} w, (${cids}) c WHERE true`;
}

const localClock =
  'db_version = excluded.db_version, site = 0, seq = excluded.seq, ts = excluded.ts';

/** The local write's log entry for the row `ref`. */
function logRow(table: CrrTable, ref: string): string {
  return `INSERT INTO ${quote(table.logTable)}
    SELECT 0, db_version, ${refValues(table, ref).join(', ')} FROM ${writeStateTable} WHERE true
    ON CONFLICT DO NOTHING;`;
}

/** Takes `count` seqs; the write's changes must then be read back. */
const nextSeq = (count: string | number) =>
  `UPDATE ${writeStateTable} SET seq = seq + ${count}, read_back = 1;`;

function updated(table: CrrTable): string {
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
    ${materialized(table, (alias) => pkIs(table, alias, refValues(table, 'NEW')))
      .map((sql) => `${sql};`)
      .join('\n')}
    ${nextSeq(count)}
    ${clockRows(table, 'NEW', cids, 1, count)}
      ON CONFLICT DO UPDATE SET col_version = col_version + 1, ${localClock};
    ${logRow(table, 'NEW')}`;
}

function deleted(table: CrrTable): string {
  // A delete makes the causal length even and drops the column clocks (implied ones with the
  // flag): a later insert starts over.
  return `
    ${nextSeq(1)}
    ${clockRows(table, 'OLD', `SELECT '${SENTINEL}' AS cid, 0 AS n`, 2, 1)}
      ON CONFLICT DO UPDATE SET col_version = col_version + (col_version % 2 = 1), ${localClock},
        implied = 0;
    DELETE FROM ${quote(table.clockTable)}
      WHERE ${pkIs(table, quote(table.clockTable), refValues(table, 'OLD'))} AND cid != '${SENTINEL}';
    ${logRow(table, 'OLD')}`;
}

/** The end of a local write for one table whose journal holds rows (see `makeLocalWrites`). */
export class LocalJournal {
  readonly #table: CrrTable;
  readonly #flush: Statement[];
  readonly #written: Statement;
  readonly #clear: Statement;

  constructor(db: Db, table: CrrTable) {
    this.#table = table;
    const journalT = quote(table.journalTable);
    const readBack = `read_back OR EXISTS (SELECT 1 FROM ${journalT} WHERE known = 1)`;
    this.#flush = flushStatements(table, readBack).map((sql) => db.prepare(sql));
    const join = table.pks.map((col) => `t.${quote(col)} = j.${pkCopy(col)}`).join(' AND ');
    this.#written = db
      .prepare(
        `SELECT ${[...copyValues(table, 'j'), ...table.columns.map((col) => `t.${quote(col)}`)].join(', ')}
         FROM ${journalT} j LEFT JOIN ${quote(table.name)} t ON ${join} ORDER BY j.rowid`,
      )
      .raw();
    this.#clear = db.prepare(`DELETE FROM ${journalT}`);
  }

  /** Writes the journaled rows' clocks and log entries and takes their seqs. */
  flush(): void {
    for (const statement of this.#flush) statement.run();
  }

  /**
   * Appends the changes of the journaled rows, every one new to this node (the write state's
   * `read_back` is 0), their seqs from `seq` on (what `flush` took), and each row to `rows` once,
   * its pk as read (what `rowsOf` would unpack from the changes). Returns the next seq.
   */
  build(
    siteId: Buffer,
    version: number,
    ts: number,
    seq: number,
    into: Change[],
    rows: RowChange[],
  ): number {
    const { name, pks, columns } = this.#table;
    let next = seq;
    for (const row of this.#written.all() as SqlValue[][]) {
      const pkValues = row.slice(0, pks.length);
      const pk = packColumns(pkValues);
      rows.push({ table: name, pk: pkValues, deleted: false });
      into.push(freshChange(name, pk, SENTINEL, null, version, siteId, next, ts));
      for (let at = 0; at < columns.length; at++) {
        const val = row[pks.length + at] ?? null;
        into.push(
          freshChange(name, pk, columns[at] as string, val, version, siteId, next + at + 1, ts),
        );
      }
      next += 1 + columns.length;
    }
    return next;
  }

  clear(): void {
    this.#clear.run();
  }
}

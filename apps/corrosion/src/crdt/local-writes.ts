import type { Database as Db, Statement } from 'better-sqlite3';
import type { Change } from './changes.js';
import type { RowChange } from './crdt.js';
import {
  type CrrTable,
  clockPlaces,
  copyValues,
  literal,
  materialized,
  notMerging,
  pkCopy,
  pkCopyColumns,
  pkIs,
  quote,
  refusedOutside,
  refValues,
  SENTINEL,
  writeStateTable,
} from './crr.js';
import { packColumns, type SqlValue } from './pack.js';
import { freshChange } from './version-read.js';

/**
 * How a local write records its clocks. An insert only notes the row's pk in the table's journal;
 * at the end of the write — or before the first update or delete, so every clock is written in
 * statement order — the journal is flushed set-wise: a row new to this node gets its sentinel
 * with implied column clocks (see `makeCrr`), a re-inserted one what an insert of a known row
 * writes, every one a log entry, their seqs numbered in the journal's order. One statement per
 * inserted row instead of one per clock statement: what brought a local write of new rows to 0.4
 * of a plain insert. Updates and deletes
 * record their clocks row by row. While every row a write touched was inserted under a new key,
 * its changes are certain (causal length 1, version 1 of every column) and are built from the
 * journal and the rows alone (`LocalJournal.build`), else read back with their clocks.
 *
 * The journal is a table of the file, empty but inside a write, so its triggers are the file's
 * too: the one statement an insert's trigger runs both journals the row and refuses a writer other
 * than the agent (a guard trigger of its own would cost a second trigger per row). The journal has
 * no index (its rowid is the row's place in the write): a row inserted twice in one write is
 * journaled twice, and the flush records the second as a re-insert. The triggers stand aside while a merge runs, so
 * a merge records exactly the clock it was given, and are rebuilt on every start: a schema reload
 * may have added columns.
 */
export function makeLocalWrites(db: Db, table: CrrTable): void {
  const name = table.name;
  const t = quote(name);
  const journalT = quote(table.journalTable);
  const trigger = (kind: string) => quote(`__corro_${kind}_${name}`);
  for (const kind of ['insert', 'flush_update', 'flush_delete', 'update', 'update_pk', 'delete']) {
    db.exec(`DROP TRIGGER IF EXISTS ${trigger(kind)}`);
  }
  db.exec(`DROP TABLE IF EXISTS ${journalT};
    CREATE TABLE ${journalT} (${pkCopyColumns(table)}, known INTEGER NOT NULL DEFAULT 0);`);
  const samePk = table.pks.map((col) => `NEW.${quote(col)} IS OLD.${quote(col)}`).join(' AND ');
  const changed = table.columns.map((col) => `NEW.${quote(col)} IS NOT OLD.${quote(col)}`);
  // An update that keeps the key and changes no value records nothing (and a table of keys only
  // has no value to change).
  const valueUpdate = table.columns.length
    ? `CREATE TRIGGER ${trigger('update')} AFTER UPDATE ON ${t}
    WHEN ${notMerging} AND ${samePk} AND (${changed.join(' OR ')}) BEGIN ${updated(table)} END;`
    : '';
  const { fresh, mark, known, log, seqs } = flushStatements(table);
  const count = `(SELECT count(*) FROM ${journalT})`;
  const flush = `${[fresh, mark, ...known, log, seqs(count, '1')].join(';\n')};
    DELETE FROM ${journalT};`;
  db.exec(`
    CREATE TRIGGER ${trigger('insert')} AFTER INSERT ON ${t} BEGIN ${journaled(table)} END;
    CREATE TRIGGER ${trigger('flush_update')} BEFORE UPDATE ON ${t}
    WHEN EXISTS (SELECT 1 FROM ${journalT}) BEGIN ${flush} END;
    CREATE TRIGGER ${trigger('flush_delete')} BEFORE DELETE ON ${t}
    WHEN EXISTS (SELECT 1 FROM ${journalT}) BEGIN ${flush} END;
    ${valueUpdate}
    CREATE TRIGGER ${trigger('update_pk')} AFTER UPDATE ON ${t}
    WHEN ${notMerging} AND NOT (${samePk}) BEGIN ${deleted(table)} ${journaled(table)} END;
    CREATE TRIGGER ${trigger('delete')} AFTER DELETE ON ${t}
    WHEN ${notMerging} BEGIN ${deleted(table)} END;
  `);
}

/** The journal entry of the row NEW; none in a merge, refused outside a local write. */
function journaled(table: CrrTable): string {
  return `INSERT INTO ${quote(table.journalTable)} (${table.pks.map(pkCopy).join(', ')})
    SELECT ${refValues(table, 'NEW').join(', ')} FROM ${writeStateTable} w
    WHERE w.merging = 0 AND ${refusedOutside('w')};`;
}

/** The statements of a journal's flush (see `makeLocalWrites`). */
interface Flush {
  /** The sentinel of every journaled row that has none: a row new to this node. */
  fresh: string;
  /** Marks the rest: rows that had a clock, and a second entry of a row. */
  mark: string;
  /** The clocks of the marked rows. */
  known: string[];
  log: string;
  /** Takes `count` seqs a row (an SQL expression); `readBack`: the new `read_back`. */
  seqs: (count: string, readBack: string) => string;
}

/**
 * A journal's flush: clocks and log entries of the journaled rows, `1 + columns` seqs a row in the
 * journal's order from the write's next seq. A row new to this node gets its sentinel with its
 * column clocks implied; a row that had a clock, or was journaled twice (kept with its first
 * entry's seqs), what an insert of a known row writes, after its implied clocks are written out.
 */
function flushStatements(table: CrrTable): Flush {
  const clockT = quote(table.clockTable);
  const journalT = quote(table.journalTable);
  const width = 1 + table.columns.length;
  const jPks = copyValues(table, 'j').join(', ');
  const clockColumns = `${table.pks.map(pkCopy).join(', ')}, cid, col_version, db_version, site, seq, ts, implied`;
  // An emptied table's rowids start again at 1: a row's place in the journal.
  const seqOf = (j: string) => `w.seq + (${j}.rowid - 1) * ${width}`;
  const knownRows = (alias: string) =>
    `(${copyValues(table, alias).join(', ')}) IN (SELECT ${jPks} FROM ${journalT} j WHERE j.known = 1)`;
  return {
    // An upsert, not INSERT OR IGNORE: in a trigger the firing statement's conflict clause would
    // override OR IGNORE.
    fresh: `INSERT INTO ${clockT} (${clockColumns})
      SELECT ${jPks}, '${SENTINEL}', 1, w.db_version, 0, ${seqOf('j')}, w.ts, ${table.columns.length}
      FROM ${journalT} j, ${writeStateTable} w WHERE true ORDER BY j.rowid ON CONFLICT DO NOTHING`,
    // Any sentinel but the one `fresh` gave this entry.
    mark: `UPDATE ${journalT} SET known = 1 WHERE EXISTS (SELECT 1 FROM ${clockT} c, ${writeStateTable} w
      WHERE ${pkIs(table, 'c', copyValues(table, journalT))} AND c.cid = '${SENTINEL}'
        AND NOT (c.site = 0 AND c.db_version = w.db_version AND c.seq = ${seqOf(journalT)}))`,
    // An insert makes the row alive: an even (deleted) causal length becomes odd. A re-insert of a
    // live row (INSERT OR REPLACE) bumps every column but leaves the sentinel alone, as cr-sqlite
    // does: its causal length does not change, and rewriting its clock would make the writer's
    // sentinel differ for good from every replica's, which settle equal lengths by site id. Its
    // seq is taken all the same, so a version's seqs do not depend on what a row held.
    known: [
      ...materialized(table, knownRows),
      `INSERT INTO ${clockT} (${clockColumns})
        SELECT ${jPks}, c.cid, 1, w.db_version, 0, ${seqOf('j')} + c.n, w.ts, 0
        FROM ${journalT} j, ${writeStateTable} w, (${clockPlaces(table)}) c WHERE j.known = 1
        ON CONFLICT DO UPDATE SET col_version = col_version + 1, db_version = excluded.db_version,
          site = 0, seq = excluded.seq, ts = excluded.ts
        WHERE excluded.cid != '${SENTINEL}' OR col_version % 2 = 0`,
    ],
    log: `INSERT INTO ${quote(table.logTable)} (site, db_version, ${table.pks.map(pkCopy).join(', ')})
      SELECT 0, w.db_version, ${jPks} FROM ${journalT} j, ${writeStateTable} w WHERE true
      ON CONFLICT DO NOTHING`,
    seqs: (count, readBack) =>
      `UPDATE ${writeStateTable} SET seq = seq + ${width} * ${count}, read_back = ${readBack}`,
  };
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

/**
 * Takes `count` seqs, first in every trigger but the insert's (refused here outside a local
 * write, before anything is written); the write's changes must then be read back.
 */
const nextSeq = (count: string | number) =>
  `UPDATE ${writeStateTable} SET seq = seq + ${count}, read_back = 1
    WHERE ${refusedOutside(writeStateTable)};`;

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
  readonly #fresh: Statement;
  readonly #count: Statement;
  readonly #mark: Statement;
  readonly #known: Statement[];
  readonly #log: Statement;
  readonly #seqs: Statement;
  readonly #written: Statement;
  readonly #clear: Statement;

  constructor(db: Db, table: CrrTable) {
    this.#table = table;
    const journalT = quote(table.journalTable);
    const { fresh, mark, known, log, seqs } = flushStatements(table);
    this.#fresh = db.prepare(fresh);
    this.#count = db.prepare(`SELECT count(*) FROM ${journalT}`).pluck();
    this.#mark = db.prepare(mark);
    this.#known = known.map((sql) => db.prepare(sql));
    this.#log = db.prepare(log);
    this.#seqs = db.prepare(seqs('?', 'read_back OR ?'));
    this.#written = db
      .prepare(
        `SELECT ${[...copyValues(table, 'j'), ...table.columns.map((col) => `t.${quote(col)}`)].join(', ')}
         FROM ${journalT} j LEFT JOIN ${quote(table.name)} t ON ${pkIs(table, 'j', refValues(table, 't'))}
         ORDER BY j.rowid`,
      )
      .raw();
    this.#clear = db.prepare(`DELETE FROM ${journalT}`);
  }

  /** Writes the journaled rows' clocks and log entries and takes their seqs. */
  flush(): void {
    const fresh = this.#fresh.run().changes;
    const count = this.#count.get() as number;
    // A row that had a clock, or was journaled twice: the write's changes are read back.
    const known = fresh < count;
    if (known) {
      this.#mark.run();
      for (const statement of this.#known) statement.run();
    }
    this.#log.run();
    this.#seqs.run(count, known ? 1 : 0);
  }

  /**
   * Appends the changes of the journaled rows, every one new to this node and journaled once (the
   * write state's `read_back` is 0), their seqs from `seq` on (what `flush` took), and each row to
   * `rows` once, its pk as read (what `rowsOf` would unpack from the changes). Returns the next seq.
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

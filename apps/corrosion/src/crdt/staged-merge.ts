import { present } from '@fleet/service/invariant';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { Change } from './changes.js';
import { type CrrTable, literal, quote, SENTINEL } from './crr.js';
import type { SqlValue } from './pack.js';
import { bindable } from './values.js';

/** A row's changes: `changes[from..end)`. */
export interface Group {
  changes: Change[];
  from: number;
  end: number;
}

/** A staged row's group, with what its merge reports: its unpacked pk and its packed pk (latin1). */
export interface StagedGroup extends Group {
  pk: SqlValue[];
  pkKey: string;
}

/** Rows staged by one multi-row INSERT: fewer statement runs, each with at most 64 × (pks + columns + 6) values. */
const stageRowsMax = 64;

/**
 * The set-based merge of whole new rows (issue 14's apply shape): a row group that is a whole
 * fresh row — its sentinel, then every column in the table's order, at consecutive seqs, one
 * causal length, one col_version, one version and time — is staged with its values bound once
 * (a row of a temporary table, `stageRowsMax` rows per statement), and the staged rows are merged
 * by a few `INSERT … SELECT` statements: keys, data rows, clock rows, log entries. A staged row
 * whose key this node knows (or staged before it in the batch) goes back to the general merge,
 * after the others. The others get keys from the next
 * free one on, in staging order (key = first + idx - 1; a known row's idx leaves a hole), so
 * their clock rows and log entries need no lookup of their keys. Anything else never comes here.
 * The result is what the general merge of such a row writes (property-tested by the convergence
 * test).
 */
export class StagedMerge {
  readonly #db: Db;
  readonly #table: CrrTable;
  readonly #stageT: string;
  /** Values bound per staged row. */
  readonly #width: number;
  readonly #known: Statement;
  readonly #drop: Statement;
  readonly #firstKey: Statement;
  readonly #addKeys: Statement;
  readonly #flush: Statement[];
  readonly #clear: Statement;
  /** Multi-row stage statements by row count. */
  readonly #stageBy = new Map<number, Statement>();
  /** Values of the rows not yet staged (at most `stageRowsMax` rows). */
  #pending: SqlValue[] = [];
  /** The staged groups in staging order (idx - 1). */
  #groups: StagedGroup[] = [];

  constructor(db: Db, table: CrrTable) {
    this.#db = db;
    this.#table = table;
    const stageName = `__corro_stage_${table.name}`;
    const stageT = `temp.${quote(stageName)}`;
    this.#stageT = stageT;
    const pks = table.pks.map(quote);
    const values = table.columns.map(quote);
    const meta = ['cl', 'col_version', 'db_version', 'site', 'seq', 'ts'];
    // Columns without a type: values are kept exactly as bound, the tables apply their own affinity.
    const staged = [...table.pks, ...table.columns].map((col) => `s_${col}`);
    this.#width = staged.length + meta.length;
    db.exec(`DROP TABLE IF EXISTS ${stageT};
      CREATE TEMP TABLE ${quote(stageName)} (idx INTEGER PRIMARY KEY,
        ${[...staged.map(quote), ...meta].join(', ')})`);
    const sPks = table.pks.map((col) => `s.${quote(`s_${col}`)}`);
    const sValues = table.columns.map((col) => `s.${quote(`s_${col}`)}`);
    const pksT = quote(table.pksTable);
    // In the clock table's key order (cid by BINARY collation), so a row's clocks go in as they sort.
    const cids = [SENTINEL, ...table.columns]
      .map((cid, at) => ({ cid, at }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.cid), Buffer.from(b.cid)))
      .map(({ cid, at }) => `SELECT ${literal(cid)} AS cid, ${at} AS n`)
      .join(' UNION ALL ');
    // AUTOINCREMENT's next key: past the greatest key ever given (sqlite_sequence) and present.
    this.#firstKey = db
      .prepare(
        `SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ${literal(table.pksTable)}), 0),
          coalesce((SELECT max(__corro_key) FROM ${pksT}), 0)) + 1`,
      )
      .pluck();
    const key = '(@first + s.idx - 1)';
    // A known pk is ignored here and keeps its key: its row is the one whose intended key is free.
    // So is a second staged group of one row (the first took the key): it merges after the first.
    this.#addKeys = db.prepare(`INSERT OR IGNORE INTO ${pksT} (__corro_key, ${pks.join(', ')})
      SELECT ${key}, ${sPks.join(', ')} FROM ${stageT} s ORDER BY s.idx`);
    this.#known = db
      .prepare(
        `SELECT s.idx FROM ${stageT} s WHERE NOT EXISTS (SELECT 1 FROM ${pksT} p WHERE p.__corro_key = ${key})`,
      )
      .pluck();
    this.#drop = db.prepare(`DELETE FROM ${stageT} WHERE idx = ?`);
    this.#flush = [
      db.prepare(`INSERT INTO ${quote(table.name)} (${[...pks, ...values].join(', ')})
        SELECT ${[...sPks, ...sValues].join(', ')} FROM ${stageT} s ORDER BY s.idx`),
      db.prepare(`INSERT INTO ${quote(table.clockTable)}
        SELECT ${key}, c.cid, CASE c.n WHEN 0 THEN s.cl ELSE s.col_version END,
          s.db_version, s.site, s.seq + c.n, s.ts
        FROM ${stageT} s, (${cids}) c`),
      db.prepare(`INSERT INTO ${quote(table.logTable)}
        SELECT s.site, s.db_version, ${key} FROM ${stageT} s ORDER BY s.idx`),
    ];
    this.#clear = db.prepare(`DELETE FROM ${stageT}`);
  }

  get pending(): boolean {
    return this.#groups.length > 0;
  }

  /** Whether `changes[from..end)` is a whole fresh row (see above). */
  accepts(changes: Change[], from: number, end: number): boolean {
    const { columns } = this.#table;
    if (end - from !== 1 + columns.length) return false;
    const sentinel = changes[from];
    if (
      sentinel === undefined ||
      sentinel.cid !== SENTINEL ||
      sentinel.cl % 2 === 0 ||
      sentinel.col_version !== sentinel.cl
    )
      return false;
    const colVersion = changes[from + 1]?.col_version;
    for (let at = 1; at <= columns.length; at++) {
      const change = changes[from + at];
      if (
        change === undefined ||
        change.cid !== columns[at - 1] ||
        change.cl !== sentinel.cl ||
        change.col_version !== colVersion ||
        change.seq !== sentinel.seq + at ||
        change.db_version !== sentinel.db_version ||
        change.ts !== sentinel.ts
      )
        return false;
    }
    return true;
  }

  /** Stages an accepted group (`pk`: its unpacked pk; `site`: its site's ordinal). */
  add(group: StagedGroup, site: number): void {
    const { changes, from, end, pk } = group;
    const sentinel = present(changes[from], 'a staged group’s sentinel');
    const pending = this.#pending;
    for (const value of pk) pending.push(bindable(value));
    for (let at = from + 1; at < end; at++) {
      pending.push(bindable(present(changes[at], 'a staged group’s change').val));
    }
    const colVersion = changes[from + 1]?.col_version ?? sentinel.cl;
    pending.push(sentinel.cl, colVersion, sentinel.db_version, site, sentinel.seq, sentinel.ts);
    this.#groups.push(group);
    if (pending.length === stageRowsMax * this.#width) this.#stagePending();
  }

  /** Writes the pending rows into the stage, in staging order. */
  #stagePending(): void {
    const rows = this.#pending.length / this.#width;
    if (rows === 0) return;
    let statement = this.#stageBy.get(rows);
    if (statement === undefined) {
      const row = `(NULL, ${Array.from({ length: this.#width }, () => '?').join(', ')})`;
      statement = this.#db.prepare(
        `INSERT INTO ${this.#stageT} VALUES ${Array.from({ length: rows }, () => row).join(', ')}`,
      );
      this.#stageBy.set(rows, statement);
    }
    statement.run(this.#pending);
    this.#pending = [];
  }

  /**
   * Forgets the staged rows held in memory after a failed merge: the caller's transaction rolls
   * the stage table back with everything else (a temporary table is transactional too).
   */
  reset(): void {
    this.#pending = [];
    this.#groups = [];
  }

  /**
   * Merges every staged row. Returns the groups whose key this node knew: the caller merges
   * those by the general path. The others are new rows now.
   */
  flush(): { merged: StagedGroup[]; known: StagedGroup[] } {
    this.#stagePending();
    const first = this.#firstKey.get() as number;
    this.#addKeys.run({ first });
    const known: StagedGroup[] = [];
    const knownIdx = new Set<number>();
    for (const idx of this.#known.all({ first }) as number[]) {
      known.push(present(this.#groups[idx - 1], 'a staged row’s group'));
      knownIdx.add(idx);
      this.#drop.run(idx);
    }
    for (const statement of this.#flush) statement.run({ first });
    this.#clear.run();
    const merged =
      knownIdx.size === 0 ? this.#groups : this.#groups.filter((_, at) => !knownIdx.has(at + 1));
    this.#groups = [];
    return { merged, known };
  }
}

import { present } from '@fleet/service/invariant';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { Change } from './changes.js';
import { type CrrTable, clockPlaces, pkIs, quote, SENTINEL } from './crr.js';
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
 * by a few `INSERT … SELECT` statements: data rows, clocks, log entries. A row at causal length 1
 * and version 1 of every column gets its sentinel alone, its column clocks implied (see
 * `makeCrr`), as a local insert of a new row does. A staged row this node has a clock of (or
 * staged before it in the batch) goes back to the general merge, after the others. Anything else
 * never comes here. The result is what the general merge of such a row writes (property-tested by
 * the convergence test).
 */
export class StagedMerge {
  readonly #db: Db;
  readonly #table: CrrTable;
  readonly #stageT: string;
  /** Values bound per staged row. */
  readonly #width: number;
  readonly #known: Statement;
  readonly #drop: Statement;
  readonly #flush: Statement[];
  readonly #clear: Statement;
  /** Multi-row stage statements by row count. */
  readonly #stageBy = new Map<number, Statement>();
  /** Values of the rows not yet staged (at most `stageRowsMax` rows). */
  #pending: SqlValue[] = [];
  /** The staged groups in staging order (idx - 1). */
  #groups: StagedGroup[] = [];
  /** The packed pks staged (latin1): a second group of one row goes to the general merge. */
  readonly #pks = new Set<string>();
  /** The groups that repeat a staged row: merged after the stage, by the general path. */
  #later: StagedGroup[] = [];

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
    const clockT = quote(table.clockTable);
    const compact = 's.cl = 1 AND s.col_version = 1';
    this.#known = db
      .prepare(
        `SELECT s.idx FROM ${stageT} s WHERE EXISTS (SELECT 1 FROM ${clockT} c
           WHERE ${pkIs(table, 'c', sPks)} AND c.cid = '${SENTINEL}')`,
      )
      .pluck();
    this.#drop = db.prepare(`DELETE FROM ${stageT} WHERE idx = ?`);
    this.#flush = [
      db.prepare(`INSERT INTO ${quote(table.name)} (${[...pks, ...values].join(', ')})
        SELECT ${[...sPks, ...sValues].join(', ')} FROM ${stageT} s ORDER BY s.idx`),
      db.prepare(`INSERT INTO ${clockT}
        SELECT ${sPks.join(', ')}, '${SENTINEL}', 1, s.db_version, s.site, s.seq, s.ts,
          ${table.columns.length}
        FROM ${stageT} s WHERE ${compact}`),
      db.prepare(`INSERT INTO ${clockT}
        SELECT ${sPks.join(', ')}, c.cid, CASE c.n WHEN 0 THEN s.cl ELSE s.col_version END,
          s.db_version, s.site, s.seq + c.n, s.ts, 0
        FROM ${stageT} s, (${clockPlaces(table)}) c WHERE NOT (${compact})`),
      db.prepare(`INSERT OR IGNORE INTO ${quote(table.logTable)}
        SELECT s.site, s.db_version, ${sPks.join(', ')} FROM ${stageT} s`),
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
    if (this.#pks.has(group.pkKey)) {
      this.#later.push(group);
      return;
    }
    this.#pks.add(group.pkKey);
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
    this.#pks.clear();
    this.#later = [];
  }

  /**
   * Merges every staged row. Returns the groups whose row this node knew, or which repeat a row
   * staged before them: the caller merges those by the general path, in this order. The others
   * are new rows now.
   */
  flush(): { merged: StagedGroup[]; known: StagedGroup[] } {
    this.#stagePending();
    const known: StagedGroup[] = [];
    const knownIdx = new Set<number>();
    for (const idx of this.#known.all() as number[]) {
      known.push(present(this.#groups[idx - 1], 'a staged row’s group'));
      knownIdx.add(idx);
      this.#drop.run(idx);
    }
    for (const statement of this.#flush) statement.run();
    this.#clear.run();
    const merged =
      knownIdx.size === 0 ? this.#groups : this.#groups.filter((_, at) => !knownIdx.has(at + 1));
    known.push(...this.#later);
    this.#groups = [];
    this.#pks.clear();
    this.#later = [];
    return { merged, known };
  }
}

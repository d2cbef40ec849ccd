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

/**
 * The set-based merge of whole new rows (issue 14's apply shape): a row group that is a whole
 * fresh row — its sentinel, then every column in the table's order, at consecutive seqs, one
 * causal length, one col_version, one version and time — is staged with its values bound once
 * (a row of a temporary table), and the staged rows are merged by a few `INSERT … SELECT`
 * statements: keys, data rows, clock rows, log entries. A staged row whose key this node knows
 * goes back to the general merge. Anything else never comes here. The result is what the general
 * merge of such a row writes (property-tested by the convergence test).
 */
export class StagedMerge {
  readonly #table: CrrTable;
  readonly #stage: Statement;
  readonly #known: Statement;
  readonly #drop: Statement;
  readonly #flush: Statement[];
  readonly #clear: Statement;
  /** The staged groups in staging order (idx - 1). */
  #groups: Group[] = [];
  /** Packed pks staged (latin1): a second group of one row must wait for the first to merge. */
  readonly #pks = new Set<string>();

  constructor(db: Db, table: CrrTable) {
    this.#table = table;
    const stageName = `__corro_stage_${table.name}`;
    const stageT = `temp.${quote(stageName)}`;
    const pks = table.pks.map(quote);
    const values = table.columns.map(quote);
    const meta = ['cl', 'col_version', 'db_version', 'site', 'seq', 'ts'];
    // Columns without a type: values are kept exactly as bound, the tables apply their own affinity.
    const staged = [...table.pks, ...table.columns].map((col) => `s_${col}`);
    db.exec(`DROP TABLE IF EXISTS ${stageT};
      CREATE TEMP TABLE ${quote(stageName)} (idx INTEGER PRIMARY KEY,
        ${[...staged.map(quote), ...meta].join(', ')})`);
    const sPks = table.pks.map((col) => `s.${quote(`s_${col}`)}`);
    const sValues = table.columns.map((col) => `s.${quote(`s_${col}`)}`);
    const pksT = quote(table.pksTable);
    const join = table.pks.map((col, at) => `p.${quote(col)} = ${sPks[at]}`).join(' AND ');
    const cids = [SENTINEL, ...table.columns]
      .map((cid, at) => `SELECT ${literal(cid)} AS cid, ${at} AS n`)
      .join(' UNION ALL ');
    this.#stage = db.prepare(
      `INSERT INTO ${stageT} VALUES (NULL, ${[...staged, ...meta].map(() => '?').join(', ')})`,
    );
    this.#known = db
      .prepare(`SELECT s.idx FROM ${stageT} s WHERE EXISTS (SELECT 1 FROM ${pksT} p WHERE ${join})`)
      .pluck();
    this.#drop = db.prepare(`DELETE FROM ${stageT} WHERE idx = ?`);
    this.#flush = [
      db.prepare(`INSERT INTO ${pksT} (${pks.join(', ')}) SELECT ${sPks.join(', ')}
        FROM ${stageT} s ORDER BY s.idx`),
      db.prepare(`INSERT INTO ${quote(table.name)} (${[...pks, ...values].join(', ')})
        SELECT ${[...sPks, ...sValues].join(', ')} FROM ${stageT} s ORDER BY s.idx`),
      db.prepare(`INSERT OR REPLACE INTO ${quote(table.clockTable)}
        SELECT p.__corro_key, c.cid, CASE c.n WHEN 0 THEN s.cl ELSE s.col_version END,
          s.db_version, s.site, s.seq + c.n, s.ts
        FROM ${stageT} s JOIN ${pksT} p ON ${join}, (${cids}) c ORDER BY s.idx, c.n`),
      db.prepare(`INSERT OR IGNORE INTO ${quote(table.logTable)}
        SELECT s.site, s.db_version, p.__corro_key FROM ${stageT} s JOIN ${pksT} p ON ${join}`),
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
    const sentinel = present(changes[from], 'the sentinel of a staged group');
    if (sentinel.cid !== SENTINEL || sentinel.cl % 2 === 0 || sentinel.col_version !== sentinel.cl)
      return false;
    const colVersion = changes[from + 1]?.col_version;
    for (let at = 1; at <= columns.length; at++) {
      const change = present(changes[from + at], 'a change of a staged group');
      if (
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

  /** Whether a group of the row `pk` (packed) is staged already. */
  has(pk: Buffer): boolean {
    return this.#pks.has(pk.toString('latin1'));
  }

  /** Stages an accepted group (`pk`: its unpacked, bindable pk; `site`: its site's ordinal). */
  add(changes: Change[], from: number, end: number, pk: SqlValue[], site: number): void {
    const sentinel = present(changes[from], 'the sentinel of a staged group');
    const values: SqlValue[] = [];
    for (let at = from + 1; at < end; at++)
      values.push(bindable(present(changes[at], 'a change of a staged group').val));
    const colVersion = changes[from + 1]?.col_version ?? sentinel.cl;
    this.#stage.run(
      ...pk,
      ...values,
      sentinel.cl,
      colVersion,
      sentinel.db_version,
      site,
      sentinel.seq,
      sentinel.ts,
    );
    this.#groups.push({ changes, from, end });
    this.#pks.add(sentinel.pk.toString('latin1'));
  }

  /**
   * Merges every staged row. Returns the groups whose key this node knew: the caller merges
   * those by the general path. The others are new rows now.
   */
  flush(): { merged: Group[]; known: Group[] } {
    const known: Group[] = [];
    const knownIdx = new Set<number>();
    for (const idx of this.#known.all() as number[]) {
      known.push(present(this.#groups[idx - 1], 'the staged group of a known key'));
      knownIdx.add(idx);
      this.#drop.run(idx);
    }
    for (const statement of this.#flush) statement.run();
    this.#clear.run();
    const merged = this.#groups.filter((_, at) => !knownIdx.has(at + 1));
    this.#groups = [];
    this.#pks.clear();
    return { merged, known };
  }
}

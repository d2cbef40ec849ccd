import { present } from '@fleet/service/invariant';
import type { Database as Db, Statement } from 'better-sqlite3';
import { type Change, changesViewSql } from './changes.js';
import {
  type CrrTable,
  describeTable,
  makeCrr,
  makeWriteState,
  materialized,
  pkIs,
  quote,
  refValues,
  SENTINEL,
  writeStateTable,
} from './crr.js';
import { LocalJournal, makeLocalWrites } from './local-writes.js';
import { LogCompaction } from './log-compaction.js';
import { packColumns, type SqlValue, unpackColumns } from './pack.js';
import { type Group, StagedMerge } from './staged-merge.js';
import { bindable, compareValues } from './values.js';
import { VersionRead } from './version-read.js';

export type { Change };

/** A row a write or a merge touched: changed (or created), or deleted. */
export interface RowChange {
  table: string;
  pk: SqlValue[];
  deleted: boolean;
}

interface Clock {
  col_version: number;
  db_version: number;
  site: number;
  seq: number;
}

/** Per-table statements of the merge, prepared once. */
interface TableStatements {
  table: CrrTable;
  clock: Statement;
  setClock: Statement;
  /** The sentinel of a row this node has no clock of (a no-op for a known row). */
  addSentinel: Statement;
  /** Writes out a row's implied column clocks (see `makeCrr`). */
  materialize: Statement[];
  dropColumnClocks: Statement;
  /** The version log's entry `(site, db_version, pk)`, if not there yet. */
  addLog: Statement;
  insertRow: Statement;
  deleteRow: Statement;
  value: Map<string, Statement>;
  setValue: Map<string, Statement>;
  changes: VersionRead;
  journal: LocalJournal;
  staged: StagedMerge;
  /** INSERT of a whole new row with these columns (statements cached per column list). */
  insertFull(columns: string[]): Statement;
  /** INSERT OR REPLACE of `count` clock rows in one statement. */
  setClocks(count: number): Statement;
}

/**
 * cr-sqlite's semantics on better-sqlite3: CRR tables with clock tables and triggers, the
 * `crsql_changes` view, and the merge of remote changes. Site ordinal 0 is this site.
 */
export class Crdt {
  readonly #db: Db;
  readonly #tables = new Map<string, TableStatements>();
  #logCompaction: LogCompaction | undefined;
  /** Which tables' journals hold rows: one flag per table, in `#tables`' order. */
  #journaled: Statement | undefined;
  readonly #siteIds: Buffer[] = [];
  readonly #ordinals = new Map<string, number>();
  readonly #write: {
    begin: Statement;
    state: Statement;
    end: Statement;
    merging: Statement;
    bumpSeq: Statement;
  };

  constructor(db: Db, siteId: Buffer) {
    this.#db = db;
    makeWriteState(db);
    // A write cut short by a crash rolled back; this only clears what a failed merge could leave.
    db.exec(`UPDATE ${writeStateTable} SET db_version = NULL, merging = 0`);
    this.#write = {
      begin: db.prepare(
        `UPDATE ${writeStateTable} SET db_version = ?, seq = 0, ts = ?, read_back = 0`,
      ),
      state: db.prepare(`SELECT seq, ts, read_back FROM ${writeStateTable}`),
      end: db.prepare(`UPDATE ${writeStateTable} SET db_version = NULL, seq = 0`),
      merging: db.prepare(`UPDATE ${writeStateTable} SET merging = ?`),
      bumpSeq: db.prepare(`UPDATE ${writeStateTable} SET seq = seq + ?, read_back = 1`),
    };
    db.function('corro_pack', { varargs: true, deterministic: true }, (...values: unknown[]) =>
      packColumns(values as SqlValue[]),
    );
    db.exec(`CREATE TABLE IF NOT EXISTS __corro_sites (
      ordinal INTEGER PRIMARY KEY, site_id BLOB NOT NULL UNIQUE)`);
    db.prepare('INSERT OR IGNORE INTO __corro_sites VALUES (0, ?)').run(siteId);
    for (const row of db.prepare('SELECT ordinal, site_id FROM __corro_sites').all() as {
      ordinal: number;
      site_id: Buffer;
    }[]) {
      this.#siteIds[row.ordinal] = row.site_id;
      this.#ordinals.set(row.site_id.toString('hex'), row.ordinal);
    }
  }

  get siteId(): Buffer {
    return present(this.#siteIds[0], 'this site’s id');
  }

  /** Makes every named table a CRR and (re)creates `crsql_changes`. */
  track(tableNames: string[]): void {
    const tables = tableNames.map((name) => describeTable(this.#db, name));
    this.#db.transaction(() => {
      // The view names the metadata tables, which a migration renames.
      this.#db.exec('DROP VIEW IF EXISTS crsql_changes');
      for (const table of tables) {
        makeCrr(this.#db, table);
        makeLocalWrites(this.#db, table);
      }
      this.#db.exec(changesViewSql(tables));
    })();
    this.#tables.clear();
    for (const table of tables) this.#tables.set(table.name, this.#prepare(table));
    this.#logCompaction = new LogCompaction(this.#db, tables);
    this.#journaled =
      tables.length === 0
        ? undefined
        : this.#db
            .prepare(
              `SELECT ${tables.map((table) => `EXISTS (SELECT 1 FROM ${quote(table.journalTable)})`).join(', ')}`,
            )
            .raw();
  }

  /** One step of the version log's compaction (see `LogCompaction`): the entries it deleted. */
  compactLog(entriesMax: number): number {
    return this.#logCompaction?.step(entriesMax) ?? 0;
  }

  /**
   * Runs `fn` as a local write that gets version `next` if it changes anything; returns that
   * version (or null) and the last seq. Call inside the SQLite transaction.
   */
  localWrite<T>(
    next: number,
    fn: () => T,
  ): {
    value: T;
    version: number | null;
    lastSeq: number;
    ts: number;
    /** The version's changes when they are known without reading them back, else null. */
    changes: Change[] | null;
    /** The rows they touched, with them (else null: `rowsOf` the changes read back). */
    rows: RowChange[] | null;
  } {
    this.#write.begin.run(next, Date.now());
    let value: T;
    let journals: LocalJournal[];
    try {
      value = fn();
      journals = this.#journals();
      for (const journal of journals) journal.flush();
    } catch (error) {
      // The caller's rollback would undo the begin too, but the state must not depend on it.
      this.#write.end.run();
      throw error;
    }
    const { seq, ts, read_back } = this.#write.state.get() as {
      seq: number;
      ts: number;
      read_back: number;
    };
    const version = seq > 0 ? next : null;
    let changes: Change[] | null = null;
    let rows: RowChange[] | null = null;
    if (version === null) {
      changes = [];
      rows = [];
    } else if (read_back === 0) {
      // Every row was journaled as new, the journals flushed in this order from seq 0 on.
      changes = [];
      rows = [];
      let nextSeq = 0;
      for (const journal of journals) {
        nextSeq = journal.build(this.siteId, version, ts, nextSeq, changes, rows);
      }
    }
    for (const journal of journals) journal.clear();
    this.#write.end.run();
    return { value, version, lastSeq: seq - 1, ts, changes, rows };
  }

  /** The journals holding rows of the open write, in the tables' order. */
  #journals(): LocalJournal[] {
    const flags = (this.#journaled?.get() ?? []) as number[];
    const journals: LocalJournal[] = [];
    let at = 0;
    for (const statements of this.#tables.values()) {
      if (flags[at++] === 1) journals.push(statements.journal);
    }
    return journals;
  }

  /** Gives clocks to rows written before their table was a CRR (or by a plain SQLite client). */
  backfill(): void {
    for (const { table } of this.#tables.values()) {
      const clockT = quote(table.clockTable);
      const tPks = refValues(table, 't').join(', ');
      const orphan = `NOT EXISTS (SELECT 1 FROM ${clockT} c
        WHERE ${pkIs(table, 'c', refValues(table, 't'))} AND c.cid = '${SENTINEL}')`;
      this.#db.exec(`INSERT OR IGNORE INTO ${quote(table.logTable)}
        SELECT 0, w.db_version, ${tPks} FROM ${quote(table.name)} t, ${writeStateTable} w WHERE ${orphan}`);
      // Each row as if inserted now under a new key: its sentinel, its column clocks implied.
      const width = 1 + table.columns.length;
      const added = this.#db
        .prepare(
          `INSERT INTO ${clockT} SELECT ${tPks}, '${SENTINEL}', 1, w.db_version, 0,
            w.seq + (row_number() OVER (ORDER BY ${tPks}) - 1) * ${width}, w.ts, ${table.columns.length}
          FROM ${quote(table.name)} t, ${writeStateTable} w WHERE ${orphan}`,
        )
        .run().changes;
      this.#write.bumpSeq.run(added * width);
    }
  }

  /** The ordinal of a site id in the clock tables, registering it on first sight. */
  ordinal(siteId: Buffer): number {
    const hex = siteId.toString('hex');
    let ordinal = this.#ordinals.get(hex);
    if (ordinal === undefined) {
      ordinal = this.#siteIds.length;
      this.#db.prepare('INSERT INTO __corro_sites VALUES (?, ?)').run(ordinal, siteId);
      this.#siteIds[ordinal] = Buffer.from(siteId);
      this.#ordinals.set(hex, ordinal);
    }
    return ordinal;
  }

  knownOrdinal(siteId: Buffer): number | undefined {
    return this.#ordinals.get(siteId.toString('hex'));
  }

  siteIdOf(ordinal: number): Buffer {
    return present(this.#siteIds[ordinal], 'the site id of a known ordinal');
  }

  /** The changes a site's version still holds here, in seq order (overwritten ones are gone). */
  changesOf(siteOrdinal: number, version: number): Change[] {
    const changes: Change[] = [];
    const siteId = this.siteIdOf(siteOrdinal);
    for (const statements of this.#tables.values()) {
      statements.changes.read(siteOrdinal, siteId, version, changes);
    }
    return changes.sort((a, b) => a.seq - b.seq);
  }

  /**
   * Merges remote changes (inside the caller's transaction) by cr-sqlite's rule: the greater
   * causal length wins; then the greater col_version; then the greater value in SQLite's type
   * order; then the greater site id. The winner's clock is stored as received. Returns the
   * rows whose values changed, once each.
   */
  merge(lists: Change[][]): RowChange[] {
    const touched = new Map<string, RowChange>();
    const staging = new Set<TableStatements>();
    // The last site id seen and its ordinal: a changeset's changes share their origin's.
    let siteId: Buffer | undefined;
    let site = 0;
    this.#write.merging.run(1);
    try {
      for (const changes of lists) {
        // A row's changes come together (seq order): merge them as one group.
        for (let start = 0; start < changes.length; ) {
          const first = present(changes[start], 'a change in range');
          let end = start + 1;
          for (let next = changes[end]; next !== undefined; next = changes[++end]) {
            // A row's changes often share one pk buffer (as built by `VersionRead`).
            if (next.table !== first.table || (next.pk !== first.pk && !next.pk.equals(first.pk)))
              break;
          }
          const from = start;
          start = end;
          const statements = this.#tables.get(first.table);
          if (statements === undefined) continue; // a table this node's schema does not have yet
          const { staged } = statements;
          if (staged.accepts(changes, from, end)) {
            if (first.site_id !== siteId) {
              siteId = first.site_id;
              site = this.ordinal(siteId);
            }
            const pkKey = first.pk.toString('latin1');
            staged.add({ changes, from, end, pk: unpackColumns(first.pk), pkKey }, site);
            staging.add(statements);
            continue;
          }
          // Anything merged one by one comes after what was staged before it.
          this.#flushStaged(staging, touched);
          this.#mergeGroup(statements, { changes, from, end }, touched);
        }
      }
      this.#flushStaged(staging, touched);
    } catch (error) {
      // The caller's transaction rolls the stage back: what the stages hold in memory goes too.
      for (const statements of staging) statements.staged.reset();
      throw error;
    } finally {
      this.#write.merging.run(0);
    }
    return [...touched.values()];
  }

  /** Merges the staged rows of every table in `staging` (see `StagedMerge`). */
  #flushStaged(staging: Set<TableStatements>, touched: Map<string, RowChange>): void {
    for (const statements of staging) {
      const { merged, known } = statements.staged.flush();
      const { name } = statements.table;
      for (const { pk, pkKey } of merged) {
        touched.set(`${name}\0${pkKey}`, { table: name, pk, deleted: false });
      }
      for (const group of known) this.#mergeGroup(statements, group, touched);
    }
    staging.clear();
  }

  /** Merges one row's group of changes on the row-by-row path. */
  #mergeGroup(
    statements: TableStatements,
    { changes, from, end }: Group,
    touched: Map<string, RowChange>,
  ): void {
    const first = present(changes[from], 'a group’s first change');
    const unpacked = unpackColumns(first.pk);
    const pk = unpacked.map(bindable);
    if (pk.length !== statements.table.pks.length) {
      throw new RangeError(`${statements.table.name}: bad primary key`);
    }
    let outcome = this.#mergeNewRow(statements, changes, from, end, pk);
    if (outcome === undefined) {
      // A known row: every clock it has is written out before any is compared or replaced.
      for (const statement of statements.materialize) statement.run(...pk);
      outcome = 'none';
      for (let at = from; at < end; at++) {
        const one = this.#mergeOne(statements, present(changes[at], 'a change of the group'), pk);
        if (one !== 'none') outcome = one;
      }
    }
    if (outcome === 'none') return;
    touched.set(touchKey(first), {
      table: first.table,
      pk: unpacked,
      deleted: outcome === 'deleted',
    });
  }

  /**
   * The common case, in a few statements: a live row this node has never seen (no sentinel, so no
   * clocks: every incoming change wins). `changes[from..end)` are the row's changes. Undefined
   * when the group is not that case.
   */
  #mergeNewRow(
    s: TableStatements,
    changes: Change[],
    from: number,
    end: number,
    pk: SqlValue[],
  ): 'none' | 'updated' | 'deleted' | undefined {
    const first = present(changes[from], 'a group’s first change');
    const cl = first.cl;
    if (cl % 2 === 0) return undefined;
    const cids: string[] = [];
    const values: SqlValue[] = [];
    let sentinel: Change | undefined;
    for (let at = from; at < end; at++) {
      const change = present(changes[at], 'a change of the group');
      if (change.cl !== cl) return undefined;
      if (change.cid === SENTINEL) sentinel = change;
      else if (!s.value.has(change.cid)) return undefined;
      else {
        cids.push(change.cid);
        values.push(bindable(change.val));
      }
    }
    const site = this.ordinal(first.site_id);
    // Without its sentinel, the causal length is implied (see #mergeOne).
    const added = sentinel
      ? s.addSentinel.run(...pk, cl, sentinel.db_version, site, sentinel.seq, sentinel.ts)
      : s.addSentinel.run(...pk, cl, 0, site, 0, first.ts);
    if (added.changes === 0) return undefined; // known here: the general merge decides
    s.insertFull(cids).run(...pk, ...values);
    const clocks: SqlValue[] = [];
    let logged = -1;
    for (let at = from; at < end; at++) {
      const change = present(changes[at], 'a change of the group');
      // A row's changes come from one version (one changeset): one log entry, as a rule.
      if (change.db_version !== logged) s.addLog.run(site, change.db_version, ...pk);
      logged = change.db_version;
      if (change === sentinel) continue;
      clocks.push(...pk, change.cid, change.col_version, change.db_version, site, change.seq);
      clocks.push(change.ts);
    }
    if (clocks.length > 0) s.setClocks(cids.length).run(...clocks);
    return 'updated';
  }

  /** The rows some changes touched, once each (a delete when the row's last word is one). */
  rowsOf(changes: Change[]): RowChange[] {
    const rows = new Map<string, RowChange>();
    let previous: Change | undefined;
    for (const change of changes) {
      const deleted = change.cid === SENTINEL && change.cl % 2 === 0;
      // A row's changes come together and share one pk buffer when built here (`VersionRead`).
      const sameRow = previous?.pk === change.pk && previous.table === change.table;
      previous = change;
      if (sameRow && !deleted) continue;
      const id = `${change.table}\0${change.pk.toString('latin1')}`;
      if (deleted || !rows.has(id)) {
        rows.set(id, { table: change.table, pk: unpackColumns(change.pk), deleted });
      }
    }
    return [...rows.values()];
  }

  /** What the change did to the row (`pk`: its bound values). */
  #mergeOne(s: TableStatements, change: Change, pk: SqlValue[]): 'none' | 'updated' | 'deleted' {
    const column = change.cid !== SENTINEL;
    if (column && change.cl % 2 === 0) return 'none'; // column values exist only on live rows
    const incoming: Clock = {
      col_version: change.col_version,
      db_version: change.db_version,
      site: this.ordinal(change.site_id),
      seq: change.seq,
    };
    const sentinel = s.clock.get(...pk, SENTINEL) as Clock | undefined;
    const localCl = sentinel?.col_version ?? 0;
    if (change.cl < localCl) return 'none';
    const setClock = (cid: string, clock: Clock) => {
      s.setClock.run(
        ...pk,
        cid,
        clock.col_version,
        clock.db_version,
        clock.site,
        clock.seq,
        change.ts,
      );
      // An implied sentinel (db_version 0) belongs to no version.
      if (clock.db_version > 0) s.addLog.run(clock.site, clock.db_version, ...pk);
    };
    if (change.cl > localCl) {
      // A new causal length: the old incarnation's column clocks no longer count.
      s.dropColumnClocks.run(...pk);
      // A column change implies the causal length before its sentinel arrives: recorded with
      // db_version 0, it loses to any real sentinel clock of the same length.
      setClock(
        SENTINEL,
        column ? { ...implied, site: incoming.site, col_version: change.cl } : incoming,
      );
      if (change.cl % 2 === 0) {
        s.deleteRow.run(...pk);
        return 'deleted';
      }
      s.insertRow.run(...pk);
      if (column) this.#mergeColumn(s, change, pk, incoming, setClock);
      return 'updated';
    }
    if (!column) {
      // Same causal length: keep the greater clock so every replica stores the same one.
      if (sentinel && sentinelWins(this, incoming, sentinel)) setClock(SENTINEL, incoming);
      return 'none';
    }
    return this.#mergeColumn(s, change, pk, incoming, setClock) ? 'updated' : 'none';
  }

  #mergeColumn(
    s: TableStatements,
    change: Change,
    pk: SqlValue[],
    incoming: Clock,
    setClock: (cid: string, clock: Clock) => void,
  ): boolean {
    const getValue = s.value.get(change.cid);
    if (getValue === undefined) return false; // a column this node's schema does not have yet
    const local = s.clock.get(...pk, change.cid) as Clock | undefined;
    if (local !== undefined) {
      if (change.col_version < local.col_version) return false;
      if (change.col_version === local.col_version) {
        const row = getValue.get(...pk) as Record<string, SqlValue> | undefined;
        const byValue = compareValues(change.val, row?.[change.cid] ?? null);
        if (byValue < 0) return false;
        if (byValue === 0) {
          if (this.clockWins(incoming, local)) setClock(change.cid, incoming);
          return false;
        }
      }
    }
    present(s.setValue.get(change.cid), 'the statement of a known column').run(
      bindable(change.val),
      ...pk,
    );
    setClock(change.cid, incoming);
    return true;
  }

  /** Equal versions and values: the greater site id wins, then db_version, then seq. */
  clockWins(incoming: Clock, local: Clock): boolean {
    const bySite = Buffer.compare(this.siteIdOf(incoming.site), this.siteIdOf(local.site));
    if (bySite !== 0) return bySite > 0;
    if (incoming.db_version !== local.db_version) return incoming.db_version > local.db_version;
    return incoming.seq > local.seq;
  }

  #prepare(table: CrrTable): TableStatements {
    const db = this.#db;
    const t = quote(table.name);
    const pks = table.pks.map(quote).join(', ');
    const marks = table.pks.map(() => '?').join(', ');
    const where = table.pks.map((col) => `${quote(col)} = ?`).join(' AND ');
    const clockT = quote(table.clockTable);
    const atPk = pkIs(
      table,
      clockT,
      table.pks.map(() => '?'),
    );
    const clockRow = `(${marks}, ?, ?, ?, ?, ?, ?, 0)`;
    return {
      table,
      clock: db.prepare(
        `SELECT col_version, db_version, site, seq FROM ${clockT} WHERE ${atPk} AND cid = ?`,
      ),
      setClock: db.prepare(`INSERT OR REPLACE INTO ${clockT} VALUES ${clockRow}`),
      addSentinel: db.prepare(
        `INSERT OR IGNORE INTO ${clockT} VALUES (${marks}, '${SENTINEL}', ?, ?, ?, ?, ?, 0)`,
      ),
      materialize: materialized(table, (alias) =>
        pkIs(
          table,
          alias,
          table.pks.map(() => '?'),
        ),
      ).map((sql) => db.prepare(sql)),
      dropColumnClocks: db.prepare(`DELETE FROM ${clockT} WHERE ${atPk} AND cid != '${SENTINEL}'`),
      addLog: db.prepare(`INSERT OR IGNORE INTO ${quote(table.logTable)} VALUES (?, ?, ${marks})`),
      insertRow: db.prepare(`INSERT OR IGNORE INTO ${t} (${pks}) VALUES (${marks})`),
      deleteRow: db.prepare(`DELETE FROM ${t} WHERE ${where}`),
      value: new Map(
        table.columns.map((col) => [
          col,
          db.prepare(`SELECT ${quote(col)} FROM ${t} WHERE ${where}`),
        ]),
      ),
      setValue: new Map(
        table.columns.map((col) => [
          col,
          db.prepare(`UPDATE ${t} SET ${quote(col)} = ? WHERE ${where}`),
        ]),
      ),
      changes: new VersionRead(db, table),
      journal: new LocalJournal(db, table),
      staged: new StagedMerge(db, table),
      insertFull: cached((columns: string[]) => {
        const all = [...table.pks, ...columns];
        return db.prepare(
          `INSERT INTO ${t} (${all.map(quote).join(', ')}) VALUES (${all.map(() => '?').join(', ')})`,
        );
      }),
      setClocks: cached((count: number) =>
        db.prepare(
          `INSERT OR REPLACE INTO ${clockT} VALUES ${Array.from({ length: count }, () => clockRow).join(', ')}`,
        ),
      ),
    };
  }
}

/** latin1 maps each byte to one char: a cheap exact key for a row's packed pk. */
const touchKey = (change: Change) => `${change.table}\0${change.pk.toString('latin1')}`;

/** The clock of a causal length learnt from a column change (see #mergeOne). */
const implied: Clock = { col_version: 0, db_version: 0, site: 0, seq: 0 };

/** Between sentinel clocks of one causal length: a real one beats an implied one. */
function sentinelWins(crdt: Crdt, incoming: Clock, local: Clock): boolean {
  if ((incoming.db_version === 0) !== (local.db_version === 0)) return local.db_version === 0;
  return crdt.clockWins(incoming, local);
}

/** Memoizes a statement factory by its argument (column lists are joined into the key). */
function cached<A extends string[] | number>(make: (arg: A) => Statement): (arg: A) => Statement {
  const statements = new Map<string, Statement>();
  return (arg) => {
    const key = String(arg);
    let statement = statements.get(key);
    if (statement === undefined) {
      statement = make(arg);
      statements.set(key, statement);
    }
    return statement;
  };
}

import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync } from 'node:fs';
import { present } from '@fleet/service/invariant';
import type { Database as Db, Statement as SqliteStatement } from 'better-sqlite3';
import Database from 'better-sqlite3';
import { Bookkeeping } from './crdt/bookkeeping.js';
import { type Change, Crdt, type RowChange } from './crdt/crdt.js';
import { corroError } from './errors.js';
import { applySchema, internalPrefix } from './schema.js';
import { type BoundStatement, bindable } from './statements.js';
import { WriteTargets } from './write-targets.js';

export interface ExecOutcome {
  results: { rows_affected: number; time: number }[];
  /** db_version of this transaction, or null when it changed nothing. */
  version: number | null;
  /** The rows it changed. */
  rows: RowChange[];
  /** Its changes (as crsql_changes rows), last seq and time: what is broadcast. */
  changes: Change[];
  lastSeq: number;
  ts: number;
}

/** Compiled statements kept per SQL text: agents see the same few statements over and over. */
const statementCacheMax = 500;

/**
 * The agent's SQLite database (WAL): the user schema as CRRs (crdt/), the replication
 * bookkeeping, and `__corro_meta` (the actor id). Only this class and the modules it hands its
 * database to touch the file.
 */
export class Store {
  readonly db: Db;
  readonly actorId: string;
  readonly crdt: Crdt;
  readonly bookkeeping: Bookkeeping;
  #tables: Set<string>;
  readonly #statements = new Map<string, SqliteStatement>();
  readonly #writeTargets: WriteTargets;

  constructor(path: string, schemaSql: string) {
    this.db = new Database(path);
    ownerOnly(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS ${internalPrefix}meta (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)`,
    );
    this.actorId =
      this.meta('actor_id') ?? this.setMeta('actor_id', randomBytes(16).toString('hex'));
    this.crdt = new Crdt(this.db, Buffer.from(this.actorId, 'hex'));
    this.bookkeeping = new Bookkeeping(this.db);
    this.#tables = new Set();
    this.#writeTargets = new WriteTargets(this.db, this.#tables);
    this.reloadSchema(schemaSql);
  }

  /** This agent's db_version: its own latest version. */
  get version(): number {
    return this.bookkeeping.head(0);
  }

  /**
   * Applies a schema (new tables, columns and indexes; destructive changes refused), makes every
   * table a CRR and gives clocks to rows that have none. Returns the tables.
   */
  reloadSchema(schemaSql: string): string[] {
    const tables = applySchema(this.db, schemaSql).tables;
    this.crdt.track(tables);
    this.#tables = new Set(tables);
    this.#statements.clear(); // compiled against the old schema
    this.#writeTargets.reset(tables);
    this.db.transaction(() => this.#localWrite(() => this.crdt.backfill()))();
    return tables;
  }

  tableNames(): string[] {
    return [...this.#tables];
  }

  /** Runs write statements in one transaction; any failure rolls all of them back. */
  transaction(statements: BoundStatement[]): ExecOutcome {
    const prepared = statements.map((statement, at) => {
      const compiled = this.prepare(statement.sql, at);
      if (compiled.reader) {
        throw corroError(
          'CORRO_ERR_BAD_STATEMENT',
          `statement ${at} returns rows: use /v1/queries`,
        );
      }
      this.#writeTargets.check(statement, at);
      return compiled;
    });
    const run = this.db.transaction(() =>
      this.#localWrite(() =>
        prepared.map((compiled, at) => {
          const started = performance.now();
          const info = this.execute(compiled, present(statements[at], 'its statement'), at);
          return { rows_affected: info.changes, time: (performance.now() - started) / 1000 };
        }),
      ),
    );
    const { value: results, version, lastSeq, ts, changes: built, rows } = run();
    const changes = version === null ? [] : (built ?? this.crdt.changesOf(0, version));
    return { results, version, rows: rows ?? this.crdt.rowsOf(changes), changes, lastSeq, ts };
  }

  /** A local write inside the open transaction; a version is taken only if a clock changed. */
  #localWrite<T>(fn: () => T) {
    const outcome = this.crdt.localWrite(this.version + 1, fn);
    if (outcome.version !== null) {
      this.bookkeeping.complete(0, outcome.version, outcome.lastSeq, outcome.ts);
    }
    return outcome;
  }

  /** Compiles a read-only statement (queries, subscriptions); a writing one is refused. */
  prepareRead(statement: BoundStatement): SqliteStatement {
    const compiled = this.prepare(statement.sql, 0);
    if (!compiled.reader || !compiled.readonly) {
      throw corroError(
        'CORRO_ERR_READ_ONLY',
        'queries and subscriptions take read-only SELECT statements',
      );
    }
    return compiled;
  }

  /**
   * Deletes up to `entriesMax` entries of one table's version log that point at no clock any
   * more, in its own transaction (the agent runs it on a timer).
   */
  compactLog(entriesMax: number): number {
    return this.db.transaction(() => this.crdt.compactLog(entriesMax))();
  }

  /** A consistent copy of the database (SQLite's online backup) at `path`. */
  async backup(path: string): Promise<void> {
    await this.db.backup(path);
    ownerOnly(path);
  }

  close(): void {
    this.db.close();
  }

  private prepare(sql: string, at: number): SqliteStatement {
    const known = this.#statements.get(sql);
    if (known) return known;
    try {
      const compiled = this.db.prepare(sql);
      if (this.#statements.size >= statementCacheMax) this.#statements.clear();
      this.#statements.set(sql, compiled);
      return compiled;
    } catch (error) {
      throw corroError('CORRO_ERR_BAD_STATEMENT', `statement ${at}: ${(error as Error).message}`);
    }
  }

  private execute(compiled: SqliteStatement, statement: BoundStatement, at: number) {
    try {
      return compiled.run(bindable(statement.params));
    } catch (error) {
      throw corroError('CORRO_ERR_BAD_STATEMENT', `statement ${at}: ${(error as Error).message}`);
    }
  }

  private meta(key: string): string | undefined {
    const row = this.db.prepare(`SELECT value FROM ${internalPrefix}meta WHERE key = ?`).get(key) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  private setMeta(key: string, value: string): string {
    this.db
      .prepare(`INSERT OR REPLACE INTO ${internalPrefix}meta (key, value) VALUES (?, ?)`)
      .run(key, value);
    return value;
  }
}

/**
 * The database holds the fleet's state (every app's machine configs, sealed secrets, token
 * digests): its owner's alone, as machines run on the same hosts as other users (flyd's machine
 * users). SQLite gives its WAL and shared-memory files the database's mode when it makes them;
 * ones an earlier agent made are changed too.
 */
function ownerOnly(path: string): void {
  if (path === ':memory:' || path === '') return;
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}

import type { Database as Db } from 'better-sqlite3';
import { corroError } from './errors.js';
import { type BoundStatement, bindable } from './statements.js';

/** One row of `EXPLAIN`: addr, opcode, p1, p2, p3, p4, p5, comment. */
type Op = [number, string, number, number, number, unknown, number, unknown];

/** The opcodes by which a statement's own program writes a b-tree: `(root page, database)`. */
const writesTree: Record<string, (op: Op) => [root: number, database: number]> = {
  OpenWrite: (op) => [op[3], op[4]],
  Clear: (op) => [op[2], op[3]], // DELETE without WHERE on a table without triggers
  Destroy: (op) => [op[2], op[4]],
};

/**
 * What a statement of `POST /v1/transactions` may do: write rows of the schema's tables (and the
 * AUTOINCREMENT counters SQLite keeps for them), nothing else. Without it one statement could
 * drop or alter a replicated table on this node only (`DROP TABLE machines`: routing reads fail
 * here while every other node keeps the table), turn off the recording of local writes
 * (`UPDATE __corro_write SET merging = 1`: later writes never replicate), rewrite the replication
 * bookkeeping, attach a database file anywhere on the host, or set pragmas. Schema changes go
 * through the `--schema` files and `POST /v1/migrations`.
 *
 * Checked from SQLite's own compiled program (`EXPLAIN`), not by reading the SQL: every b-tree the
 * statement itself opens for writing must be a schema table's or one of its indexes', in the main
 * database, and it must write at least one (ATTACH, PRAGMA, VACUUM, BEGIN and the like write
 * none). The CRR triggers' writes are their own sub-programs (EXPLAIN lists them after the
 * statement's) and are not checked. Each SQL text is checked once, on first use (`EXPLAIN` needs
 * the statement's bindings, not their values).
 */
export class WriteTargets {
  readonly #db: Db;
  #tables: Set<string>;
  readonly #allowed = new Set<string>();

  constructor(db: Db, tables: Iterable<string>) {
    this.#db = db;
    this.#tables = new Set(tables);
  }

  /** A schema reload: root pages and tables may have changed, so every text is checked again. */
  reset(tables: Iterable<string>): void {
    this.#tables = new Set(tables);
    this.#allowed.clear();
  }

  /** Throws CORRO_ERR_FORBIDDEN_WRITE unless statement `at` writes only rows of schema tables. */
  check({ sql, params }: BoundStatement, at: number): void {
    if (this.#allowed.has(sql)) return;
    let program: Op[];
    try {
      program = this.#db
        .prepare(`EXPLAIN ${sql}`)
        .raw()
        .all(bindable(params) as unknown[]) as Op[];
    } catch (error) {
      // Bindings that do not fit the statement: what running it would have said.
      throw corroError('CORRO_ERR_BAD_STATEMENT', `statement ${at}: ${(error as Error).message}`);
    }
    const tableOf = this.#rootPages();
    let rowsWritten = false;
    let counters = false;
    for (const [index, op] of program.entries()) {
      // EXPLAIN lists the triggers' sub-programs after the statement's own, each from address 0.
      if (index > 0 && op[0] === 0) break;
      const target = writesTree[op[1]]?.(op);
      if (target === undefined) continue;
      const [root, database] = target;
      // A new table's b-tree, named by a register: only ever written by a schema change.
      if (op[1] === 'OpenWrite' && (op[6] & p2IsRegister) !== 0)
        throw forbidden(at, 'creates a table');
      if (database !== 0) throw forbidden(at, 'writes a temporary or attached database');
      const table = root === 1 ? 'sqlite_schema' : (tableOf.get(root) ?? `b-tree ${root}`);
      if (op[1] === 'Destroy') throw forbidden(at, `drops ${table}`);
      if (table === 'sqlite_sequence')
        counters = true; // an AUTOINCREMENT table's counter
      else if (this.#tables.has(table)) rowsWritten = true;
      else throw forbidden(at, `writes ${table}`);
    }
    if (!rowsWritten) {
      throw forbidden(at, counters ? 'writes sqlite_sequence alone' : 'writes no table rows');
    }
    if (this.#allowed.size >= allowedMax) this.#allowed.clear(); // bounded, as the statement cache
    this.#allowed.add(sql);
  }

  /** Root page → the table it belongs to (a table's own, or one of its indexes'), main database. */
  #rootPages(): Map<number, string> {
    const rows = this.#db
      .prepare("SELECT rootpage, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")
      .raw()
      .all() as [number, string][];
    return new Map(rows);
  }
}

/** SQL texts remembered as checked: as many as the store keeps compiled statements. */
const allowedMax = 500;

/** OpenWrite's P5 flag: its P2 is a register holding the root page (SQLite's OPFLAG_P2ISREG). */
const p2IsRegister = 0x10;

function forbidden(at: number, what: string) {
  return corroError(
    'CORRO_ERR_FORBIDDEN_WRITE',
    `statement ${at} ${what}: a transaction may write rows of the schema's tables only ` +
      '(schema changes go through the --schema files and POST /v1/migrations)',
  );
}

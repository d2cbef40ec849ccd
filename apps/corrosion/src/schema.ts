import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Database as Db } from 'better-sqlite3';
import Database from 'better-sqlite3';
import { SchemaError } from './errors.js';

/** Internal tables of the agent start with this prefix and are not part of the user schema. */
export const internalPrefix = '__corro_';

interface Column {
  name: string;
  type: string;
  notnull: number;
  dflt_value: string | null;
  pk: number;
}

/** Reads a schema file, or every `.sql` file of a folder in name order. */
export function readSchema(path: string): string {
  if (!statSync(path).isDirectory()) return readFileSync(path, 'utf8');
  return readdirSync(path)
    .filter((name) => name.endsWith('.sql'))
    .sort()
    .map((name) => readFileSync(join(path, name), 'utf8'))
    .join('\n');
}

/**
 * Brings `db` to `schemaSql`: new tables, new columns and index changes are applied; a schema
 * that breaks Corrosion's rules or would drop a table or column is refused with a SchemaError.
 */
export function applySchema(db: Db, schemaSql: string): { tables: string[] } {
  const wanted = new Database(':memory:');
  try {
    try {
      wanted.exec(schemaSql);
    } catch (error) {
      throw new SchemaError(`schema does not parse: ${(error as Error).message}`);
    }
    const tables = names(wanted, 'table');
    for (const table of tables) checkRules(wanted, table);
    db.transaction(() => {
      for (const table of names(db, 'table')) {
        if (!tables.includes(table))
          throw new SchemaError(
            `table ${table} is gone from the schema: dropping tables is refused`,
          );
      }
      for (const table of tables) applyTable(db, wanted, table);
      applyIndexes(db, wanted);
    })();
    return { tables };
  } finally {
    wanted.close();
  }
}

function names(db: Db, type: 'table' | 'index'): string[] {
  const rows = db
    .prepare(
      `SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '${internalPrefix}%' ORDER BY name`,
    )
    .all(type) as { name: string }[];
  return rows.map((row) => row.name);
}

function columns(db: Db, table: string): Column[] {
  return db.prepare(`SELECT * FROM pragma_table_info(?)`).all(table) as Column[];
}

/** Corrosion's rules: a non-null primary key, a default on every NOT NULL column, no unique indexes or foreign keys. */
function checkRules(db: Db, table: string): void {
  const cols = columns(db, table);
  const pk = cols.filter((col) => col.pk > 0);
  if (pk.length === 0) throw new SchemaError(`table ${table} has no primary key`);
  for (const col of pk) {
    if (!col.notnull)
      throw new SchemaError(`table ${table}: primary key column ${col.name} must be NOT NULL`);
  }
  for (const col of cols) {
    if (col.pk === 0 && col.notnull && col.dflt_value === null) {
      throw new SchemaError(`table ${table}: NOT NULL column ${col.name} needs a DEFAULT`);
    }
  }
  const indexes = db
    .prepare('SELECT name, "unique", origin FROM pragma_index_list(?)')
    .all(table) as {
    name: string;
    unique: number;
    origin: string;
  }[];
  const unique = indexes.find((index) => index.unique && index.origin !== 'pk');
  if (unique) throw new SchemaError(`table ${table}: unique index ${unique.name} is not allowed`);
  if (
    (db.prepare('SELECT count(*) AS n FROM pragma_foreign_key_list(?)').get(table) as { n: number })
      .n > 0
  ) {
    throw new SchemaError(`table ${table}: foreign keys are not allowed`);
  }
}

function applyTable(db: Db, wanted: Db, table: string): void {
  const createSql = (
    wanted
      .prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?")
      .get(table) as { sql: string }
  ).sql;
  const have = columns(db, table);
  if (have.length === 0) {
    db.exec(createSql);
    return;
  }
  const want = columns(wanted, table);
  for (const col of have) {
    const next = want.find((candidate) => candidate.name === col.name);
    if (!next)
      throw new SchemaError(
        `table ${table}: column ${col.name} is gone: dropping columns is refused`,
      );
    if (next.type !== col.type || next.pk !== col.pk) {
      throw new SchemaError(`table ${table}: column ${col.name} changes type or key: refused`);
    }
  }
  for (const col of want) {
    if (have.some((existing) => existing.name === col.name)) continue;
    if (col.pk)
      throw new SchemaError(`table ${table}: a new primary key column ${col.name} is refused`);
    const notNull = col.notnull ? ' NOT NULL' : '';
    const fallback = col.dflt_value === null ? '' : ` DEFAULT ${col.dflt_value}`;
    db.exec(`ALTER TABLE "${table}" ADD COLUMN "${col.name}" ${col.type}${notNull}${fallback}`);
  }
}

function applyIndexes(db: Db, wanted: Db): void {
  const sqlOf = (source: Db, name: string) =>
    (
      source.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?").get(name) as
        | { sql: string | null }
        | undefined
    )?.sql;
  const want = names(wanted, 'index');
  for (const name of names(db, 'index')) {
    if (!want.includes(name) || sqlOf(db, name) !== sqlOf(wanted, name))
      db.exec(`DROP INDEX "${name}"`);
  }
  for (const name of want) {
    const sql = sqlOf(wanted, name);
    if (sql && sqlOf(db, name) === undefined) db.exec(sql);
  }
}

import { randomUUID } from 'node:crypto';
import type { Statement as SqliteStatement } from 'better-sqlite3';
import type { RowChange } from './crdt/crdt.js';
import { jsonValues } from './crdt/values.js';
import { corroError } from './errors.js';
import { type BoundStatement, bindable } from './statements.js';
import type { Store } from './store.js';

export type ChangeKind = 'insert' | 'update' | 'delete';
export type ChangeEvent = [ChangeKind, number, unknown[], number];

/** Receives a subscription's events; returns false when it cannot keep up (it is then dropped). */
export type Subscriber = (line: string) => boolean;

const pkAlias = '__corro_pk_';

/**
 * One subscription: a single-table SELECT whose result set is kept (primary key → rowid and
 * cells). After a write, the query is evaluated again for just the primary keys that changed
 * (the whole query runs again only when it has a LIMIT), and the difference becomes change
 * events with contiguous ids; the last `historyMax` changes are kept for `from=` resumes.
 */
export class Subscription {
  readonly id = randomUUID();
  readonly table: string;
  columns: string[] = [];
  #changeId = 0;
  #nextRowid = 1;
  readonly #rows = new Map<string, { rowid: number; cells: string; values: unknown[] }>();
  readonly #history: ChangeEvent[] = [];
  readonly #subscribers = new Set<Subscriber>();
  readonly #statement: SqliteStatement;
  /** The query restricted to one primary key, or null when a LIMIT makes that unsound. */
  readonly #keyStatement: SqliteStatement | null;
  readonly #params: BoundStatement['params'];
  readonly #keyCount: number;
  lastUsedMs = Date.now();

  constructor(
    store: Store,
    statement: BoundStatement,
    private readonly historyMax: number,
  ) {
    const shape = singleTableShape(statement.sql, store.tableNames());
    this.table = shape.table;
    const keys = store.db
      .prepare('SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk')
      .all(shape.table) as {
      name: string;
    }[];
    const hidden = keys
      .map((key, i) => `"${shape.table}"."${key.name}" AS ${pkAlias}${i}`)
      .join(', ');
    const sql = `${shape.head}${hidden}, ${shape.rest}`;
    this.#statement = store.prepareRead({ ...statement, sql });
    this.#statement.raw(true);
    const onKey = keys.map((_, i) => `${pkAlias}${i} IS ?`).join(' AND ');
    this.#keyStatement = /\b(LIMIT|OFFSET)\b/i.test(shape.rest)
      ? null
      : store.prepareRead({ ...statement, sql: `SELECT * FROM (${sql}) WHERE ${onKey}` });
    this.#keyStatement?.raw(true);
    this.#params = bindable(statement.params);
    this.columns = this.#statement
      .columns()
      .slice(keys.length)
      .map((column) => column.name);
    this.#keyCount = keys.length;
    this.refresh(false);
  }

  get changeId(): number {
    return this.#changeId;
  }

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  /** Sends the current rows and end-of-query to a new subscriber, then follows changes. */
  attach(subscriber: Subscriber, skipRows = false): boolean {
    this.lastUsedMs = Date.now();
    let ok = subscriber(line({ columns: this.columns }));
    if (!skipRows) {
      for (const row of this.#rows.values())
        ok &&= subscriber(line({ row: [row.rowid, row.values] }));
    }
    ok &&= subscriber(line({ eoq: { time: 0, change_id: this.#changeId } }));
    if (ok) this.#subscribers.add(subscriber);
    return ok;
  }

  /** Throws 410 unless every change after `from` is still kept. */
  assertResumable(from: number): void {
    if (from > this.#changeId)
      throw corroError('CORRO_ERR_TOO_OLD', `change ${from} has not happened yet`);
    const oldest = this.#changeId - this.#history.length;
    if (from < oldest) {
      throw corroError(
        'CORRO_ERR_TOO_OLD',
        `changes after ${from} are no longer kept (oldest kept: ${oldest + 1})`,
      );
    }
  }

  /** Replays the changes after `from` (checked with assertResumable first), then follows. */
  resume(subscriber: Subscriber, from: number): boolean {
    this.assertResumable(from);
    this.lastUsedMs = Date.now();
    let ok = true;
    for (const change of this.#history.slice(this.#history.length - (this.#changeId - from))) {
      ok &&= subscriber(line({ change }));
    }
    if (ok) this.#subscribers.add(subscriber);
    return ok;
  }

  detach(subscriber: Subscriber): void {
    this.#subscribers.delete(subscriber);
    this.lastUsedMs = Date.now();
  }

  /** Evaluates the query for the rows that changed and publishes the difference. */
  rowsChanged(rows: RowChange[]): void {
    if (this.#keyStatement === null) {
      this.refresh();
      return;
    }
    const statement = this.#keyStatement;
    const params = this.#params;
    for (const { pk } of rows) {
      const bound = Array.isArray(params) ? [...params, ...pk] : [...pk, params];
      const raw = statement.get(...bound) as unknown[] | undefined;
      const key = JSON.stringify(pk);
      const known = this.#rows.get(key);
      if (raw === undefined) {
        if (!known) continue;
        this.#rows.delete(key);
        this.publish(['delete', known.rowid, known.values, ++this.#changeId]);
        continue;
      }
      const values = jsonValues(raw.slice(this.#keyCount));
      const cells = JSON.stringify(values);
      if (known?.cells === cells) continue;
      const rowid = known?.rowid ?? this.#nextRowid++;
      this.#rows.set(key, { rowid, cells, values });
      this.publish([known ? 'update' : 'insert', rowid, values, ++this.#changeId]);
    }
  }

  /** Re-runs the query and publishes what changed since the last run. */
  refresh(publish = true): void {
    const keyCount = this.#keyCount;
    const seen = new Set<string>();
    const changes: [ChangeKind, number, unknown[]][] = [];
    for (const raw of this.#statement.iterate(this.#params) as Iterable<unknown[]>) {
      const key = JSON.stringify(raw.slice(0, keyCount));
      const values = jsonValues(raw.slice(keyCount));
      const cells = JSON.stringify(values);
      seen.add(key);
      const known = this.#rows.get(key);
      if (!known) {
        const rowid = this.#nextRowid++;
        this.#rows.set(key, { rowid, cells, values });
        changes.push(['insert', rowid, values]);
      } else if (known.cells !== cells) {
        this.#rows.set(key, { rowid: known.rowid, cells, values });
        changes.push(['update', known.rowid, values]);
      }
    }
    for (const [key, row] of this.#rows) {
      if (seen.has(key)) continue;
      this.#rows.delete(key);
      changes.push(['delete', row.rowid, row.values]);
    }
    if (!publish) return;
    for (const [kind, rowid, values] of changes)
      this.publish([kind, rowid, values, ++this.#changeId]);
  }

  /** Ends every subscriber's stream (shutdown). */
  closeAll(end: (subscriber: Subscriber) => void): void {
    for (const subscriber of this.#subscribers) end(subscriber);
    this.#subscribers.clear();
  }

  private publish(change: ChangeEvent): void {
    this.#history.push(change);
    if (this.#history.length > this.historyMax) this.#history.shift();
    const text = line({ change });
    for (const subscriber of this.#subscribers) {
      if (!subscriber(text)) this.#subscribers.delete(subscriber);
    }
  }
}

function line(event: unknown): string {
  return `${JSON.stringify(event)}\n`;
}

/**
 * The foundation follows single-table SELECTs only: it splits `SELECT [cols] FROM table ...` so
 * the table's primary key can be selected alongside. Joins, subqueries, DISTINCT and aggregates
 * are refused with a clear error until incremental evaluation lands (issue 4).
 */
function singleTableShape(
  sql: string,
  tables: string[],
): { table: string; head: string; rest: string } {
  const refuse = (why: string) =>
    corroError(
      'CORRO_ERR_UNSUPPORTED_QUERY',
      `subscriptions follow single-table SELECTs for now: ${why}`,
    );
  const match = /^(\s*SELECT\s+)([\s\S]*)$/i.exec(sql);
  const [, head, body] = match ?? [];
  if (head === undefined || body === undefined) throw refuse('the statement is not a SELECT');
  if ((sql.match(/\bSELECT\b/gi) ?? []).length > 1) throw refuse('subqueries are not followed');
  if (/\bJOIN\b/i.test(body)) throw refuse('joins are not followed');
  if (/^\s*DISTINCT\b/i.test(body) || /\bGROUP\s+BY\b/i.test(body))
    throw refuse('DISTINCT and GROUP BY are not followed');
  if (/\b(count|sum|avg|min|max|group_concat|total)\s*\(/i.test(body))
    throw refuse('aggregates are not followed');
  const [, table, comma] = /\bFROM\s+(?:main\.)?["`[]?(\w+)["`\]]?(\s*,)?/i.exec(body) ?? [];
  if (table === undefined) throw refuse('no FROM table');
  if (comma) throw refuse('joins are not followed');
  if (!tables.includes(table))
    throw corroError('CORRO_ERR_BAD_STATEMENT', `no such table: ${table}`);
  return { table, head, rest: body };
}

import { present } from '@fleet/service/invariant';
import type { RowChange } from './crdt/crdt.js';
import { jsonValues } from './crdt/values.js';
import { corroError } from './errors.js';
import type { Subscriber } from './subscription.js';

/**
 * `POST /v1/updates/{table}`'s hub: which primary keys of a table changed, as
 * `{"notify":["update"|"delete",[pk...]]}` lines, with no query and no snapshot.
 */
export class Updates {
  readonly #byTable = new Map<string, Set<Subscriber>>();

  constructor(private readonly tables: () => string[]) {}

  follow(table: string, subscriber: Subscriber): () => void {
    if (!this.tables().includes(table)) {
      throw corroError('CORRO_ERR_BAD_STATEMENT', `no such table: ${table}`);
    }
    const subscribers = this.#byTable.get(table) ?? new Set<Subscriber>();
    this.#byTable.set(table, subscribers);
    subscribers.add(subscriber);
    return () => subscribers.delete(subscriber);
  }

  /** One write per follower for a whole batch of rows: an apply batch is one network write. */
  notify(rows: RowChange[]): void {
    const lines = new Map<string, string[]>();
    for (const row of rows) {
      if (!this.#byTable.get(row.table)?.size) continue;
      const table = lines.get(row.table) ?? [];
      lines.set(row.table, table);
      table.push(
        `${JSON.stringify({ notify: [row.deleted ? 'delete' : 'update', jsonValues(row.pk)] })}\n`,
      );
    }
    for (const [table, tableLines] of lines) {
      const subscribers = present(this.#byTable.get(table), 'the subscribers of a table notified');
      const text = tableLines.join('');
      for (const subscriber of subscribers) {
        if (!subscriber(text)) subscribers.delete(subscriber);
      }
    }
  }
}

import type { RowChange } from './crdt/crdt.js';
import { corroError } from './errors.js';
import type { BoundStatement } from './statements.js';
import type { Store } from './store.js';
import { Subscription } from './subscription.js';

export interface SubscriptionLimits {
  /** Subscriptions kept at once; idle ones (no subscriber) are evicted oldest first. */
  subscriptionsMax: number;
  /** Changes kept per subscription for `from=` resumes. */
  historyMax: number;
}

/** The same query text and parameters share one subscription. */
const keyOf = (statement: BoundStatement) =>
  JSON.stringify([statement.sql.trim(), statement.params]);

/** All subscriptions of the agent: the same query text shares one subscription and id. */
export class Subscriptions {
  readonly #byKey = new Map<string, Subscription>();
  readonly #byId = new Map<string, Subscription>();

  constructor(
    private readonly store: Store,
    private readonly limits: SubscriptionLimits,
  ) {}

  get size(): number {
    return this.#byId.size;
  }

  /** The subscription already following this query, if any. */
  find(statement: BoundStatement): Subscription | undefined {
    return this.#byKey.get(keyOf(statement));
  }

  open(statement: BoundStatement): Subscription {
    const key = keyOf(statement);
    const existing = this.#byKey.get(key);
    if (existing) return existing;
    if (this.#byId.size >= this.limits.subscriptionsMax) this.evictIdle();
    const subscription = new Subscription(this.store, statement, this.limits.historyMax);
    this.#byKey.set(key, subscription);
    this.#byId.set(subscription.id, subscription);
    return subscription;
  }

  get(id: string): Subscription {
    const subscription = this.#byId.get(id);
    if (!subscription) throw corroError('CORRO_ERR_UNKNOWN_SUBSCRIPTION', `no subscription ${id}`);
    return subscription;
  }

  /** After a commit or a merge: re-evaluate the subscriptions for the rows that changed. */
  committed(rows: RowChange[]): void {
    if (rows.length === 0) return;
    const byTable = new Map<string, RowChange[]>();
    for (const row of rows) byTable.set(row.table, [...(byTable.get(row.table) ?? []), row]);
    for (const subscription of this.#byId.values()) {
      const changed = byTable.get(subscription.table);
      if (changed) subscription.rowsChanged(changed);
    }
  }

  closeAll(end: Parameters<Subscription['closeAll']>[0]): void {
    for (const subscription of this.#byId.values()) subscription.closeAll(end);
  }

  private evictIdle(): void {
    const idle = [...this.#byKey].filter(([, sub]) => sub.subscriberCount === 0);
    idle.sort(([, a], [, b]) => a.lastUsedMs - b.lastUsedMs);
    const victim = idle[0];
    if (!victim) {
      throw corroError(
        'CORRO_ERR_OVERLOADED',
        `all ${this.limits.subscriptionsMax} subscriptions are in use`,
      );
    }
    this.#byKey.delete(victim[0]);
    this.#byId.delete(victim[1].id);
  }
}

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

  open(statement: BoundStatement): Subscription {
    const key = JSON.stringify([statement.sql.trim(), statement.params]);
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

  /** After a commit: re-evaluate the subscriptions over the tables it wrote. */
  committed(tables: Set<string>): void {
    for (const subscription of this.#byId.values()) {
      if (tables.has('*') || tables.has(subscription.table)) subscription.refresh();
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

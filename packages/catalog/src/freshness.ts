import { type FollowedTable, followedTables } from './rows.js';

/** How fresh one followed table is, as `catalog.stats()` shows it. */
export interface TableFreshness {
  /** Its stream is attached: initial rows delivered since its last reset. */
  attached: boolean;
  /** Since the table's last event of any kind; null before the first. */
  lastEventAgeMs: number | null;
  /**
   * Not attached, or neither an event nor a successful probe of the agent within `staleAfterMs`:
   * changes may be missing, and the Catalog cannot tell.
   */
  stale: boolean;
}

/**
 * What the Catalog knows of its own freshness. A table's stream says it is alive only when it
 * carries an event: the agent's heartbeats (empty lines on idle streams) are consumed by
 * @fleet/corrosion-client, which re-attaches a stream silent past its `subscriptionIdleMs`, and
 * are not delivered. So a quiet table is confirmed by probing the agent: a table is fresh while
 * its stream is attached and it had an event, or the agent answered a probe, within
 * `staleAfterMs`. A paused or unreachable agent (the probe) makes every table stale once
 * the bound passes; a stream that dies while the agent answers is the client's to notice (it
 * re-attaches within `subscriptionIdleMs` and replays what was missed, or starts over with a
 * reset, which detaches the table here).
 */
export class Freshness {
  readonly #lastEventMs = new Map<FollowedTable, number>();
  #agentAnsweredMs = 0;

  constructor(readonly staleAfterMs: number) {}

  event(table: FollowedTable, nowMs: number): void {
    this.#lastEventMs.set(table, nowMs);
  }

  agentAnswered(nowMs: number): void {
    this.#agentAnsweredMs = nowMs;
  }

  isStale(table: FollowedTable, attached: boolean, nowMs: number): boolean {
    if (!attached) return true;
    const confirmedMs = Math.max(this.#lastEventMs.get(table) ?? 0, this.#agentAnsweredMs);
    return nowMs - confirmedMs > this.staleAfterMs;
  }

  tables(
    attached: ReadonlySet<FollowedTable>,
    nowMs: number,
  ): Record<FollowedTable, TableFreshness> {
    const result = {} as Record<FollowedTable, TableFreshness>;
    for (const table of Object.keys(followedTables) as FollowedTable[]) {
      const last = this.#lastEventMs.get(table);
      result[table] = {
        attached: attached.has(table),
        lastEventAgeMs: last === undefined ? null : nowMs - last,
        stale: this.isStale(table, attached.has(table), nowMs),
      };
    }
    return result;
  }

  /** Tables stale now (for the gauge and `fresh`). */
  staleCount(attached: ReadonlySet<FollowedTable>, nowMs: number): number {
    let count = 0;
    for (const table of Object.keys(followedTables) as FollowedTable[])
      if (this.isStale(table, attached.has(table), nowMs)) count++;
    return count;
  }
}

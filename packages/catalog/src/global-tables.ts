import type { CorrosionClient } from '@fleet/corrosion-client';
import {
  type FollowedTable,
  followedTables,
  hostFromCells,
  regionFromCells,
  text,
} from './rows.js';
import type { Guarded } from './shard.js';
import type { RowKind } from './store.js';
import type { Topology } from './topology.js';

export interface GlobalTablesHooks {
  /** Applies one row, counting (never throwing) a bad row. */
  guardRow(table: FollowedTable, cells: unknown[], apply: () => unknown): void;
  /** A write that did not apply: logged and counted by the Catalog. */
  failed(table: FollowedTable, label: string, error: unknown): void;
  gaveUp(table: FollowedTable, error: unknown): void;
}

export interface GlobalTablesLimits {
  resyncAttemptsMax: number;
  queryTimeoutMs: number;
  bufferedChangesMax: number;
}

interface Pending {
  events: [RowKind, unknown[]][];
  overflow: boolean;
}

/**
 * The global tables (hosts, regions), held whole behind the `catalog-global` lock. An update
 * its lock refused is not replayed (it could undo a newer change of the same row that applied
 * meanwhile): the table is read again whole from corrosion — it is small — and swapped in, with
 * the changes delivered during the read replayed on top (the race handling of an app's load).
 */
export class GlobalTables {
  /** Tables to read again, with the attempts made. */
  readonly #resyncs = new Map<FollowedTable, number>();
  /** Tables being read again: their changes meanwhile, replayed after. */
  readonly #loading = new Map<FollowedTable, Pending>();

  constructor(
    readonly guarded: Guarded<Topology>,
    private readonly limits: GlobalTablesLimits,
    private readonly hooks: GlobalTablesHooks,
  ) {}

  apply(table: FollowedTable, kind: RowKind, cells: unknown[]): Promise<void> | undefined {
    const loading = this.#loading.get(table);
    if (loading !== undefined) {
      if (loading.events.length < this.limits.bufferedChangesMax)
        loading.events.push([kind, cells]);
      else loading.overflow = true;
      return undefined;
    }
    return this.guarded
      .write(`apply-${table}`, { table }, (topology) =>
        this.hooks.guardRow(table, cells, () => applyGlobal(topology, table, kind, cells)),
      )
      .catch((error: unknown) => this.#failed(table, `apply-${table}`, error));
  }

  /** Replaces a table's rows whole (a stream's rows after its reset). */
  swap(table: FollowedTable, rows: readonly unknown[][]): Promise<void> {
    return this.guarded
      .write(`reset-${table}`, { table }, (topology) => this.#replace(topology, table, rows))
      .catch((error: unknown) => this.#failed(table, `reset-${table}`, error));
  }

  /** Starts the resyncs due (the Catalog calls it once every stream is attached). */
  pump(client: CorrosionClient): void {
    for (const table of this.#resyncs.keys()) {
      if (!this.#loading.has(table)) void this.#resync(client, table);
    }
  }

  #failed(table: FollowedTable, label: string, error: unknown): void {
    this.hooks.failed(table, label, error);
    if (!this.#resyncs.has(table)) this.#resyncs.set(table, 0);
  }

  #replace(topology: Topology, table: FollowedTable, rows: readonly unknown[][]): void {
    if (table === 'hosts') for (const id of [...topology.hosts.keys()]) topology.dropHost(id);
    else for (const code of [...topology.regions.keys()]) topology.dropRegion(code);
    for (const cells of rows)
      this.hooks.guardRow(table, cells, () => applyGlobal(topology, table, 'upsert', cells));
  }

  async #resync(client: CorrosionClient, table: FollowedTable): Promise<void> {
    const pending: Pending = { events: [], overflow: false };
    this.#loading.set(table, pending);
    try {
      const answer = await client.query(
        `SELECT ${followedTables[table].join(', ')} FROM ${table}`,
        { signal: AbortSignal.timeout(this.limits.queryTimeoutMs) },
      );
      if (pending.overflow)
        throw new Error(`more than ${this.limits.bufferedChangesMax} changes during the read`);
      await this.guarded.write(`resync-${table}`, { table }, (topology) => {
        this.#loading.delete(table);
        this.#replace(topology, table, answer.rows);
        for (const [kind, cells] of pending.events)
          this.hooks.guardRow(table, cells, () => applyGlobal(topology, table, kind, cells));
      });
      this.#resyncs.delete(table);
    } catch (error) {
      const attempts = (this.#resyncs.get(table) ?? 0) + 1;
      if (attempts < this.limits.resyncAttemptsMax) this.#resyncs.set(table, attempts);
      else {
        this.#resyncs.delete(table);
        this.hooks.gaveUp(table, error);
      }
    } finally {
      if (this.#loading.get(table) === pending) this.#loading.delete(table);
    }
  }
}

function applyGlobal(
  topology: Topology,
  table: FollowedTable,
  kind: RowKind,
  cells: unknown[],
): void {
  if (table === 'hosts') {
    if (kind === 'delete') topology.dropHost(text(cells, 0, 'hosts', 'id'));
    else topology.putHost(hostFromCells(cells));
  } else if (kind === 'delete') topology.dropRegion(text(cells, 0, 'regions', 'code'));
  else topology.putRegion(regionFromCells(cells));
}

import type { CorrosionClient, WatchEvent } from '@fleet/corrosion-client';
import { type LockLogger, RwLock } from '@fleet/locks';
import { catalogMetrics } from './metrics.js';
import { BadRowError, type FollowedTable, followedTables } from './rows.js';
import { type RouteDecision, RoutingTable } from './table.js';

export interface CatalogOptions {
  /** Fleet domain: `<app>.<domain>` names an app. */
  domain: string;
  logger: LockLogger & { error(details: object, message: string): void };
  /** Bound on every write to the table. */
  writeTimeoutMs?: number;
}

export interface CatalogStats {
  ready: boolean;
  apps: number;
  machines: number;
  services: number;
  rejectedRows: number;
}

/**
 * The proxy's in-memory routing table (the FIB), aggregated from corrosion (the RIB) through one
 * subscription per followed table. Every read and write goes through one RwLock, always in a
 * closure with a label and the app as context, so a stuck writer is visible in the lock's
 * snapshot. A row that cannot be used is skipped and counted: one bad update must not stop the
 * proxy (seed 002).
 */
export class Catalog {
  readonly lock: RwLock;
  readonly #table = new RoutingTable();
  readonly #loaded = new Set<FollowedTable>();
  readonly #metrics = catalogMetrics();
  #rejectedRows = 0;

  constructor(private readonly options: CatalogOptions) {
    this.lock = new RwLock({
      name: 'catalog',
      writeTimeoutMs: options.writeTimeoutMs ?? 5_000,
      logger: options.logger,
    });
  }

  /** True once every followed table delivered its initial rows. */
  get ready(): boolean {
    return this.#loaded.size === Object.keys(followedTables).length;
  }

  /** Follows corrosion until `signal` aborts; resolves when the subscriptions end. */
  async follow(client: CorrosionClient, signal: AbortSignal): Promise<void> {
    await Promise.all(
      (Object.keys(followedTables) as FollowedTable[]).map((table) =>
        client.watch(
          `SELECT ${followedTables[table].join(', ')} FROM ${table}`,
          (event) => void this.apply(table, event),
          { signal },
        ),
      ),
    );
  }

  /** Applies one subscription event under the write lock. */
  async apply(table: FollowedTable, event: WatchEvent): Promise<void> {
    const app = event.type === 'row' || event.type === 'change' ? appOf(table, event.cells) : '';
    try {
      await this.lock.write(`apply-${table}`, () => this.applyNow(table, event), {
        context: { app, table },
      });
    } catch (error) {
      this.options.logger.error({ err: error, table, app }, 'catalog update failed');
    }
  }

  /** The app a request's Host names: `<app>.<domain>`, or an app_hostnames row. */
  resolveHost(host: string): Promise<string | undefined> {
    const name = host.replace(/:\d+$/, '').replace(/\.$/, '').toLowerCase();
    const suffix = `.${this.options.domain.toLowerCase()}`;
    if (name.endsWith(suffix) && !name.slice(0, -suffix.length).includes('.')) {
      return Promise.resolve(name.slice(0, -suffix.length) || undefined);
    }
    return this.lock.read('resolve-host', () => this.#table.hostnames.get(name), {
      context: { host: name },
    });
  }

  route(app: string): Promise<RouteDecision> {
    return this.lock.read('route', () => this.#table.route(app), { context: { app } });
  }

  stats(): Promise<CatalogStats> {
    return this.lock.read('stats', () => ({
      ready: this.ready,
      apps: this.#table.apps.size,
      machines: this.#table.machines.size,
      services: this.#table.services.size,
      rejectedRows: this.#rejectedRows,
    }));
  }

  private applyNow(table: FollowedTable, event: WatchEvent): void {
    if (event.type === 'reset') {
      this.#table.clear(table);
      this.#loaded.delete(table);
      this.#metrics.resets.add(1, { table });
      return;
    }
    if (event.type === 'ready') {
      this.#loaded.add(table);
      return;
    }
    try {
      if (event.type === 'change' && event.kind === 'delete')
        this.#table.remove(table, event.cells);
      else this.#table.upsert(table, event.cells);
      this.#metrics.applied.add(1, { table });
    } catch (error) {
      if (!(error instanceof BadRowError)) throw error;
      this.#rejectedRows++;
      this.#metrics.badRows.add(1, { table });
      this.options.logger.warn(
        { table, cells: event.cells, reason: error.message },
        'catalog skipped a bad row',
      );
    }
  }
}

function appOf(table: FollowedTable, cells: unknown[]): string {
  const index = table === 'apps' ? 0 : table === 'machines' || table === 'app_hostnames' ? 1 : 2;
  return table === 'health_checks' ? '' : String(cells[index] ?? '');
}

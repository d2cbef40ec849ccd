import { setMaxListeners } from 'node:events';
import type { CorrosionClient, WatchEvent } from '@fleet/corrosion-client';
import type { LockSnapshot } from '@fleet/locks';
import { present } from '@fleet/service/invariant';
import { Admission } from './admission.js';
import { BadRowError, CatalogError } from './errors.js';
import { Freshness, type TableFreshness } from './freshness.js';
import { GlobalTables } from './global-tables.js';
import { Interner } from './intern.js';
import { Loader } from './loader.js';
import { type CatalogMetrics, catalogMetrics } from './metrics.js';
import type { AppEntry, Certificate, MachineEntry } from './model.js';
import {
  type CatalogMode,
  type CatalogOptions,
  type ResolvedOptions,
  resolveOptions,
} from './options.js';
import { faultOf, Quarantine, type QuarantineEntry } from './quarantine.js';
import { readAppRows, readHostnameApp } from './queries.js';
import { ResyncQueue } from './resync.js';
import {
  type RouteContext,
  type RouteDecision,
  type RouteOptions,
  selectMachines,
} from './route.js';
import {
  appOf,
  appTables,
  type FollowedTable,
  followedTables,
  globalTables,
  loggableCells,
} from './rows.js';
import { Guarded, type ShardState, shardIndex } from './shard.js';
import { AppTables, type RowKind } from './store.js';
import { Topology } from './topology.js';

export interface CatalogStats {
  /** Every followed table delivered its initial rows once: there is a table to route from. */
  ready: boolean;
  /** Ready, every stream attached, and no table stale (see `tables`). */
  fresh: boolean;
  /** Per followed table: attached, age of its last event, stale. */
  tables: Record<FollowedTable, TableFreshness>;
  mode: CatalogMode;
  shards: number;
  apps: number;
  machines: number;
  services: number;
  rejectedRows: number;
  loadsRunning: number;
  loadsQueued: number;
  /** Apps quarantined for an update at fault (listed by `quarantine()`). */
  quarantined: number;
  /** Apps waiting to be read again from corrosion: an update refused by its lock, or a reset. */
  resyncing: { refused: number; reset: number };
  /** Machines reported unreachable within `unreachableTtlMs` (ranked last). */
  machinesUnreachable: number;
  /** Requests waiting in `admit()` for capacity, every app together. */
  admissionWaiting: number;
}

/** A change of one app buffered while that app loads (see `#loadApp`). */
type Buffered = [FollowedTable, RowKind, unknown[]];
interface PendingLoad {
  events: Buffered[];
  overflow: boolean;
}

const followedCount = Object.keys(followedTables).length;
const noApp: RouteDecision = Object.freeze({ kind: 'no-app' });
const noOptions: RouteOptions = Object.freeze({});
const tickMs = 100;
/** How often the Catalog's upkeep runs while following (probe, resyncs, expiry). */
const upkeepMs = 100;

/**
 * The proxy's in-memory routing table (the FIB), aggregated from corrosion (the RIB). Per-app
 * tables are sharded by app over `shards` RwLocks; hosts and regions sit behind a `global`
 * lock. Every write is a labelled closure with the app as context. Reads are synchronous
 * closures that run at once when no writer holds or waits on their shard (see shard.ts), so
 * route() usually answers without a promise. In lazy mode an app's rows are read from corrosion
 * the first time a request needs them, through a bounded loader that sheds rather than queues
 * (seed 004), and kept fresh from the change streams. A row that cannot be used is skipped and
 * counted: one bad update must not stop the proxy (seed 002).
 */
export class Catalog {
  readonly mode: CatalogMode;
  readonly #options: ResolvedOptions;
  /** `.<domain>`, lowercase: the suffix of every app's own hostname. */
  readonly #domainSuffix: string;
  readonly #shards: Guarded<ShardState>[];
  readonly #global: Guarded<Topology>;
  readonly #globalTables: GlobalTables;
  readonly #tables: AppTables;
  readonly #loader: Loader;
  readonly #admission: Admission;
  readonly #metrics: CatalogMetrics;
  /** Tables whose stream is attached: initial rows delivered since its last reset. */
  readonly #attached = new Set<FollowedTable>();
  /** Tables that delivered their initial rows at least once (a table to route from). */
  readonly #served = new Set<FollowedTable>();
  /** Eager: rows of a table that started over, kept beside the old table until its `ready`. */
  readonly #rebuild = new Map<FollowedTable, unknown[][]>();
  readonly #freshness: Freshness;
  readonly #quarantine: Quarantine;
  readonly #resyncs: ResyncQueue;
  /** Machines reported unreachable (their entries carry the deadline). */
  readonly #unreachable = new Map<string, MachineEntry>();
  readonly #loading = new Map<string, PendingLoad>();
  readonly #hostLoads = new Map<string, { app: string | null | undefined }>();
  readonly #negativeApps = new Map<string, number>();
  readonly #hostCache = new Map<string, { app: string | null; untilMs: number }>();
  /** Apps whose update failed to apply (write lock timeout); they are reloaded on next use. */
  readonly #stale = new Set<string>();
  readonly #route: RouteContext;
  readonly #epochMs = Date.now();
  #client: CorrosionClient | undefined;
  #probing = false;
  #nextProbeMs = 0;
  #tick = 0;
  #rejectedRows = 0;
  #admissionWaiting = 0;

  constructor(options: CatalogOptions) {
    this.#options = resolveOptions(options);
    this.#domainSuffix = `.${this.#options.domain.toLowerCase()}`;
    this.mode = this.#options.mode;
    const lockOptions = { writeTimeoutMs: this.#options.writeTimeoutMs, logger: options.logger };
    this.#shards = Array.from(
      { length: this.#options.shards },
      (_, index) => new Guarded<ShardState>(`catalog-${index}`, new Map(), lockOptions),
    );
    const topology = new Topology(this.#options.region);
    this.#global = new Guarded('catalog-global', topology, lockOptions);
    this.#globalTables = new GlobalTables(
      this.#global,
      {
        resyncAttemptsMax: this.#options.resyncAttemptsMax,
        queryTimeoutMs: this.#options.loadTimeoutMs,
        bufferedChangesMax: this.#options.loadBufferedChangesMax,
      },
      {
        guardRow: (table, cells, apply) => this.#guardRow(table, cells, apply),
        failed: (table, label, error) => {
          this.#metrics.updateFailures.add(1, { label });
          this.#options.logger.error({ err: error, table, label }, 'catalog update failed');
        },
        gaveUp: (table, error) =>
          this.#options.logger.error(
            { err: error, table },
            'catalog gave up resyncing a global table; it is read again at its next reset',
          ),
      },
    );
    this.#tables = new AppTables(
      topology,
      new Interner(),
      (app) => this.#shardOf(app).state.get(app),
      this.mode === 'eager',
    );
    this.#metrics = catalogMetrics(this);
    this.#freshness = new Freshness(this.#options.staleAfterMs);
    this.#quarantine = new Quarantine({
      retryMs: this.#options.quarantineRetryMs,
      retryMsMax: this.#options.quarantineRetryMsMax,
    });
    this.#resyncs = new ResyncQueue({
      attemptsMax: this.#options.resyncAttemptsMax,
      retryMs: this.#options.resyncRetryMs,
    });
    this.#loader = new Loader(
      {
        concurrencyMax: this.#options.loadConcurrencyMax,
        queueMax: this.#options.loadQueueMax,
        timeoutMs: this.#options.loadTimeoutMs,
      },
      {
        shed: () => this.#metrics.loads.add(1, { outcome: 'shed' }),
        timedOut: () => this.#metrics.loads.add(1, { outcome: 'timeout' }),
        finished: (_key, outcome, ms) => {
          if (outcome === 'abandoned') return;
          this.#metrics.loads.add(1, { outcome });
          this.#metrics.loadMs.record(ms);
        },
      },
    );
    this.#admission = new Admission({
      queueMax: this.#options.admissionQueueMax,
      timeoutMs: this.#options.admissionTimeoutMs,
    });
    this.#route = {
      localRegion: topology.region(this.#options.region),
      maxCandidates: this.#options.maxCandidates,
      rttBucketMs: this.#options.rttBucketMs,
      nowTick: () => this.#nowTick(),
    };
  }

  /**
   * True once every followed table delivered its initial rows: there is a whole table to route
   * from. It stays true through a stream's reset (the old rows serve until the new ones swap in)
   * and while stale; `fresh` says whether the table can be trusted to be current.
   */
  get ready(): boolean {
    return this.#served.size === followedCount;
  }

  /** Ready, every stream attached, and no table silent past `staleAfterMs` (see stats()). */
  get fresh(): boolean {
    return (
      this.ready &&
      this.#attachedAll() &&
      this.#freshness.staleCount(this.#attached, Date.now()) === 0
    );
  }

  /**
   * Snapshots of every lock (the global one, then each shard): holders with label and context,
   * the queue, the current and last writer.
   */
  locks(): LockSnapshot[] {
    return [this.#global, ...this.#shards].map((guarded) => guarded.lock.snapshot());
  }

  /**
   * One snapshot over every lock, in the shape of a single lock's (holders and queues of all,
   * the latest writer): what `/status` showed when the Catalog had one lock.
   */
  readonly lock = {
    snapshot: (): LockSnapshot => {
      const all = this.locks();
      const last = all
        .map((snapshot) => snapshot.lastWriter)
        .filter((writer) => writer !== undefined)
        .sort((a, b) => b.releasedMs - a.releasedMs)[0];
      return {
        name: 'catalog',
        holders: all.flatMap((snapshot) => snapshot.holders),
        queued: all.flatMap((snapshot) => snapshot.queued),
        writer: all.find((snapshot) => snapshot.writer)?.writer,
        lastWriter: last,
      };
    },
  };

  /** Follows corrosion until `signal` aborts; resolves when the subscriptions end. */
  async follow(client: CorrosionClient, signal: AbortSignal): Promise<void> {
    this.#client = client;
    // Resyncs and probes run from this timer, created outside any lock's flow: a resync started
    // from the flow of the update that failed could inherit that flow's lock (seed 002).
    const upkeep = setInterval(() => this.#upkeep(client, signal), upkeepMs);
    upkeep.unref();
    // One signal for every stream: while they re-attach, each holds a listener for its request
    // and one for its backoff, past Node's default warning threshold of 10.
    const streams = new AbortController();
    setMaxListeners(4 * followedCount, streams.signal);
    const abort = () => streams.abort();
    signal.addEventListener('abort', abort, { once: true });
    if (signal.aborted) abort();
    try {
      await Promise.all(
        (Object.keys(followedTables) as FollowedTable[]).map((table) =>
          client.watch(
            `SELECT ${followedTables[table].join(', ')} FROM ${table}`,
            (event) => void this.apply(table, event),
            { signal: streams.signal },
          ),
        ),
      );
    } finally {
      clearInterval(upkeep);
      signal.removeEventListener('abort', abort);
    }
  }

  /** Applies one subscription event (public for tests and tools; `follow` calls it). */
  async apply(table: FollowedTable, event: WatchEvent): Promise<void> {
    this.#freshness.event(table, Date.now());
    if (event.type === 'ready') return this.#attach(table);
    if (event.type === 'reset') {
      this.#attached.delete(table);
      this.#metrics.resets.add(1, { table });
      return this.#reset(table);
    }
    const rebuilding = this.#rebuild.get(table);
    if (rebuilding !== undefined && event.type === 'row') {
      if (rebuilding.length < this.#options.rebuildRowsMax) {
        rebuilding.push(event.cells);
        return;
      }
      // Past the bound the old table goes now and the rest of the rows apply in place.
      await this.#swapIn(table);
    }
    const changeId = event.type === 'change' ? event.changeId : undefined;
    const kind: RowKind = event.type === 'change' && event.kind === 'delete' ? 'delete' : 'upsert';
    if ((globalTables as readonly string[]).includes(table)) {
      return this.#globalTables.apply(table, kind, event.cells);
    }
    if (table === 'health_checks') return this.#applyHealth(kind, event.cells, changeId);
    const app = appOf(table, event.cells);
    const shard = this.#shardOf(app);
    if (
      (this.mode === 'lazy' || this.#loading.size > 0) &&
      this.#intercept(table, kind, event.cells, app, shard)
    ) {
      // A machine that moved to an app not held leaves the held one (rare).
      const moved =
        table === 'machines' ? this.#tables.machines.get(String(event.cells[0])) : undefined;
      if (moved !== undefined && moved.app !== app) await this.#leavePreviousApp(moved);
      return;
    }
    if (this.#quarantine.size > 0 && this.#quarantine.has(app)) {
      this.#metrics.quarantineSkipped.add(1, { table });
      return; // its resync reads every row again
    }
    await this.#applyWrite(shard, table, app, changeId, (apps) => {
      this.#guardRow(table, event.cells, () => this.#tables.apply(apps, table, kind, event.cells));
      if (table === 'machines' || table === 'services') this.#wakeAll(app);
    });
  }

  /**
   * The app a request's Host (or TLS SNI) names: `<app>.<domain>`, or an app_hostnames row.
   * A plain value when answered from memory; a promise when lazy mode must ask corrosion.
   */
  resolveHost(host: string): string | undefined | Promise<string | undefined> {
    const name = hostName(host);
    const suffix = this.#domainSuffix;
    const appEnd = name.length - suffix.length;
    if (name.endsWith(suffix) && (appEnd === 0 || name.lastIndexOf('.', appEnd - 1) < 0)) {
      return appEnd > 0 ? name.slice(0, appEnd) : undefined;
    }
    const app = this.#tables.hostnames.get(name);
    if (app !== undefined || this.mode === 'eager') return app;
    const cached = this.#hostCache.get(name);
    if (cached !== undefined && cached.untilMs > Date.now()) {
      if (cached.app === null) this.#metrics.negativeHits.add(1, { kind: 'host' });
      return cached.app ?? undefined;
    }
    const client = this.#client;
    if (!this.#attachedAll() || client === undefined) return Promise.reject(this.#notReady(name));
    return this.#loader
      .load(`host:${name}`, '', (signal) => this.#loadHost(client, name, signal))
      .then(() => this.#tables.hostnames.get(name) ?? this.#hostCache.get(name)?.app ?? undefined);
  }

  /**
   * Picks machines for a request to `app`: candidates best first (see route.ts). A plain value
   * when answered from memory without waiting; a promise when a writer holds the app's shard or
   * lazy mode must load the app. Lazy loads reject with CATALOG_ERR_LOAD_SHED,
   * CATALOG_ERR_LOAD_TIMEOUT, CATALOG_ERR_LOAD_FAILED or CATALOG_ERR_NOT_READY.
   */
  route(app: string, options: RouteOptions = noOptions): RouteDecision | Promise<RouteDecision> {
    // The hot path, inlined from #withApp: no closure, no promise.
    const shard = this.#shardOf(app);
    if (shard.writers === 0) {
      const entry = shard.state.get(app);
      if (entry !== undefined && (this.#stale.size === 0 || !this.#stale.has(app))) {
        entry.usedTick = ++this.#tick;
        return selectMachines(entry, options, this.#contextFor(options));
      }
      if (this.mode === 'eager' && entry === undefined) return noApp;
    }
    return this.#withAppSlow(app, 'route', shard, (entry) =>
      entry === undefined ? noApp : selectMachines(entry, options, this.#contextFor(options)),
    );
  }

  /**
   * route(), and when every machine is at its hard limit, wait (bounded queue per app, deadline)
   * for capacity and route again. Rejects with CATALOG_ERR_ADMISSION_SHED or
   * CATALOG_ERR_ADMISSION_TIMEOUT, which the proxy answers with a 503.
   */
  async admit(
    app: string,
    options: RouteOptions & { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<RouteDecision> {
    const deadline = Date.now() + (options.timeoutMs ?? this.#options.admissionTimeoutMs);
    for (;;) {
      const decision = await this.route(app, options);
      if (decision.kind !== 'no-machine' || !decision.saturated) return decision;
      this.#admissionWaiting++;
      try {
        await this.#admission.wait(app, deadline - Date.now(), options.signal);
        this.#metrics.admission.add(1, { outcome: 'woken' });
      } catch (error) {
        const code = (error as CatalogError).code;
        this.#metrics.admission.add(1, {
          outcome: code === 'CATALOG_ERR_ADMISSION_SHED' ? 'shed' : 'timeout',
        });
        throw error;
      } finally {
        this.#admissionWaiting--;
      }
    }
  }

  /**
   * Counts one unit of load (a request, or a connection, per the service's concurrency type)
   * on a machine until the returned function is called (once; later calls do nothing).
   */
  begin(machine: string | MachineEntry): () => void {
    const entry = typeof machine === 'string' ? this.#tables.machines.get(machine) : machine;
    if (entry === undefined) return noop;
    entry.load++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.load--;
      if (this.#admissionWaiting > 0) this.#admission.wake(entry.app);
    };
  }

  /** Load a backhaul reported for a machine on its host (all edges' traffic); kept remoteLoadTtlMs. */
  reportLoad(machineId: string, load: number): void {
    const machine = this.#tables.machines.get(machineId);
    if (machine === undefined || !(load >= 0)) return;
    const lower = load < machine.remoteLoad;
    machine.remoteLoad = Math.floor(load);
    machine.remoteUntilTick = this.#nowTick() + Math.ceil(this.#options.remoteLoadTtlMs / tickMs);
    if (lower && this.#admissionWaiting > 0) this.#admission.wake(machine.app);
  }

  /**
   * A connect to the machine failed (refused, unreachable, timed out): it is ranked after every
   * reachable machine until it answers again (`machineReachable`) or `unreachableTtlMs` passes.
   * Not removed: when every machine is down, they are still tried.
   */
  machineUnreachable(machineId: string): void {
    const machine = this.#tables.machines.get(machineId);
    if (machine === undefined) return;
    if (machine.unreachableUntilTick === 0) this.#metrics.unreachable.add(1);
    machine.unreachableUntilTick =
      this.#nowTick() + Math.max(1, Math.ceil(this.#options.unreachableTtlMs / tickMs));
    this.#unreachable.set(machineId, machine);
  }

  /** A request to the machine succeeded: it ranks as any other again. */
  machineReachable(machineId: string): void {
    const machine = this.#unreachable.get(machineId);
    if (machine === undefined) return;
    machine.unreachableUntilTick = 0;
    this.#unreachable.delete(machineId);
  }

  /** Apps quarantined for an update at fault (seed 002): app, table, reason, when, change id. */
  quarantine(): QuarantineEntry[] {
    return this.#quarantine.list();
  }

  /** A round trip measured from this edge to a host; routing prefers it to the regions' distance. */
  recordRtt(hostId: string, rttMs: number): void {
    // A number stored on the host entry, read by route() in the same thread: no table write.
    this.#global.state.recordRtt(hostId, rttMs, Date.now());
  }

  /** The TLS certificate for a hostname (lazy mode loads the app it belongs to). */
  async certificate(hostname: string): Promise<Certificate | undefined> {
    const name = hostname.replace(/\.$/, '').toLowerCase();
    const app = await this.resolveHost(name);
    if (app === undefined) return undefined;
    return this.#withApp(app, 'certificate', (entry) => entry?.certificates?.get(name));
  }

  /** The app's own row and services (org, network; min_machines_running etc.), for autostop. */
  app(app: string): AppEntry | undefined | Promise<AppEntry | undefined> {
    return this.#withApp(app, 'app', (entry) => entry);
  }

  /** A machine held, by id (fly-replay `instance=`, backhaul load reports, autostart). */
  machine(machineId: string): MachineEntry | undefined {
    return this.#tables.machines.get(machineId);
  }

  /** A host's row (region, backhaul address, measured RTT). */
  host(hostId: string) {
    const host = this.#global.state.hosts.get(hostId);
    return host?.known ? host : undefined;
  }

  stats(): Promise<CatalogStats> {
    let apps = 0;
    let services = 0;
    for (const shard of this.#shards) apps += shard.state.size;
    for (const machine of this.#tables.machines.values()) services += machine.services.length;
    const nowMs = Date.now();
    this.#expireUnreachable();
    return Promise.resolve({
      ready: this.ready,
      fresh: this.fresh,
      tables: this.#freshness.tables(this.#attached, nowMs),
      mode: this.mode,
      shards: this.#shards.length,
      apps,
      machines: this.#tables.machines.size,
      services,
      rejectedRows: this.#rejectedRows,
      loadsRunning: this.#loader.running,
      loadsQueued: this.#loader.queued,
      quarantined: this.#quarantine.size,
      resyncing: this.#resyncs.counts(),
      machinesUnreachable: this.#unreachable.size,
      admissionWaiting: this.#admissionWaiting,
    });
  }

  /** Read by the metrics' observable gauges at collection time. */
  gauges() {
    let loadedApps = 0;
    for (const shard of this.#shards) loadedApps += shard.state.size;
    return {
      loadedApps,
      loadsRunning: this.#loader.running,
      loadsQueued: this.#loader.queued,
      machines: this.#tables.machines.size,
      staleTables: this.#freshness.staleCount(this.#attached, Date.now()),
      quarantined: this.#quarantine.size,
    };
  }

  /**
   * Runs `fn` under the write lock of the app's shard, labelled with the app as context. The
   * Catalog's own writes are synchronous; an async `fn` holds the shard (and only it) until it
   * settles — what the sharding test does to show other shards keep serving.
   */
  writeApp<R>(app: string, label: string, fn: () => R | Promise<R>): Promise<R> {
    return this.#shardOf(app).write(label, { app }, () => fn());
  }

  #withApp<R>(app: string, label: string, fn: (entry: AppEntry | undefined) => R): R | Promise<R> {
    const shard = this.#shardOf(app);
    if (shard.writers === 0) {
      const entry = shard.state.get(app);
      if (entry !== undefined && (this.#stale.size === 0 || !this.#stale.has(app))) {
        entry.usedTick = ++this.#tick;
        return fn(entry);
      }
      if (this.mode === 'eager' && entry === undefined) return fn(entry);
    }
    return this.#withAppSlow(app, label, shard, fn);
  }

  async #withAppSlow<R>(
    app: string,
    label: string,
    shard: Guarded<ShardState>,
    fn: (entry: AppEntry | undefined) => R,
  ): Promise<R> {
    const stale = this.#stale.has(app);
    if (stale || (this.mode === 'lazy' && !shard.state.has(app))) {
      const until = this.#negativeApps.get(app);
      if (!stale && until !== undefined && until > Date.now()) {
        this.#metrics.negativeHits.add(1, { kind: 'app' });
        return fn(undefined);
      }
      if (until !== undefined) this.#negativeApps.delete(app);
      const client = this.#client;
      if (this.#attachedAll() && client !== undefined) {
        await this.#loader.load(`app:${app}`, app, (signal) => this.#loadApp(client, app, signal));
      } else if (this.mode === 'lazy') throw this.#notReady(app);
      // eager without a client (fed by hand) cannot repair: it serves what it holds
    }
    return shard.read(label, { app }, (apps) => {
      const entry = apps.get(app);
      if (entry !== undefined) entry.usedTick = ++this.#tick;
      return fn(entry);
    });
  }

  /**
   * Lazy load of one app. The race with concurrent changes: the app is marked loading (so the
   * change streams buffer its events) before the queries are sent; the rows read are installed
   * and the buffered events replayed on top, in one write closure that also clears the mark,
   * so from then on events apply directly. A change committed before the query but delivered
   * after it is replayed over a row that already has it (idempotent: rows carry whole values);
   * one committed after the query is in the buffer. Streams are per table and ordered, so each
   * row ends at the newest state the stream delivered.
   */
  async #loadApp(client: CorrosionClient, app: string, signal: AbortSignal): Promise<void> {
    const pending: PendingLoad = { events: [], overflow: false };
    this.#loading.set(app, pending);
    try {
      const rows = await readAppRows(client, app, signal);
      if (pending.overflow) {
        throw new CatalogError(
          'CATALOG_ERR_LOAD_FAILED',
          `app ${app}: more than ${this.#options.loadBufferedChangesMax} changes (or a stream reset) during its load`,
          app,
        );
      }
      if (rows.apps.length === 0 && rows.machines.length === 0) {
        this.#remember(this.#negativeApps, app, Date.now() + this.#options.negativeTtlMs);
        await this.#write(this.#shardOf(app), 'load-app', { app }, (apps) => {
          this.#loading.delete(app);
          this.#stale.delete(app);
          this.#tables.drop(apps, app); // a stale app that is gone from corrosion
        });
        this.#reloaded(app);
        return;
      }
      // A row whose application throws must not leave the app half-reloaded (reload clears
      // its rows first): the others still apply, and the app is quarantined for that row.
      let fault: { table: FollowedTable; error: unknown } | undefined;
      const applyAll = (
        apps: ShardState,
        table: FollowedTable,
        kind: RowKind,
        cells: unknown[],
      ) => {
        try {
          this.#applyRow(apps, table, kind, cells);
        } catch (error) {
          fault ??= { table, error };
        }
      };
      await this.#write(this.#shardOf(app), 'load-app', { app }, (apps) => {
        this.#loading.delete(app);
        this.#stale.delete(app);
        this.#tables.reload(apps, app, () => {
          this.#tables.entry(apps, app).usedTick = ++this.#tick;
          for (const table of appTables) {
            for (const cells of rows[table]) applyAll(apps, table, 'upsert', cells);
          }
          for (const [table, kind, cells] of pending.events) applyAll(apps, table, kind, cells);
        });
      });
      if (fault === undefined) this.#reloaded(app);
      else this.#updateFailed(app, fault.table, undefined, fault.error);
      this.#evictIdle();
    } finally {
      if (this.#loading.get(app) === pending) this.#loading.delete(app);
    }
  }

  async #loadHost(client: CorrosionClient, name: string, signal: AbortSignal): Promise<void> {
    const override: { app: string | null | undefined } = { app: undefined };
    this.#hostLoads.set(name, override);
    try {
      const found = await readHostnameApp(client, name, signal);
      const app = override.app === undefined ? found : override.app;
      this.#remember(this.#hostCache, name, {
        app,
        untilMs: Date.now() + this.#options.negativeTtlMs,
      });
    } finally {
      this.#hostLoads.delete(name);
    }
  }

  /**
   * Lazy mode, before an event is applied: it forgets what the negative caches say about its
   * app or hostname; an event of an app loading now (first load or a reload) is buffered for
   * that load; one of an app not held is dropped. Returns true when the event is consumed.
   */
  #intercept(
    table: FollowedTable,
    kind: RowKind,
    cells: unknown[],
    app: string,
    shard: Guarded<ShardState>,
  ): boolean {
    if (table === 'apps' && kind === 'upsert') this.#negativeApps.delete(app);
    if (table === 'app_hostnames' && typeof cells[0] === 'string') {
      const hostname = cells[0].toLowerCase();
      this.#hostCache.delete(hostname);
      const load = this.#hostLoads.get(hostname);
      if (load !== undefined) load.app = kind === 'delete' ? null : app;
    }
    const pending = this.#loading.get(app);
    if (pending !== undefined) {
      this.#buffer(pending, [table, kind, cells]);
      return true;
    }
    return this.mode === 'lazy' && !shard.state.has(app);
  }

  #buffer(pending: PendingLoad, event: Buffered): void {
    if (pending.events.length < this.#options.loadBufferedChangesMax) pending.events.push(event);
    else pending.overflow = true;
  }

  /** A health check names only its machine: it goes to the shard of the machine's app. */
  #applyHealth(
    kind: RowKind,
    cells: unknown[],
    changeId: number | undefined,
  ): Promise<void> | undefined {
    const machine = this.#tables.machines.get(String(cells[0]));
    if (machine === undefined) {
      if (this.mode === 'eager') {
        this.#guardRow('health_checks', cells, () => this.#tables.health(kind, cells));
      }
      // The machine may belong to an app loading now: every load in flight keeps it.
      for (const pending of this.#loading.values())
        this.#buffer(pending, ['health_checks', kind, cells]);
      return undefined;
    }
    const app = machine.app;
    const pending = this.#loading.get(app); // held, but reloading: the reload replays it
    if (pending !== undefined) {
      this.#buffer(pending, ['health_checks', kind, cells]);
      return undefined;
    }
    if (this.#quarantine.size > 0 && this.#quarantine.has(app)) {
      this.#metrics.quarantineSkipped.add(1, { table: 'health_checks' });
      return undefined;
    }
    return this.#applyWrite(this.#shardOf(app), 'health_checks', app, changeId, () => {
      this.#guardRow('health_checks', cells, () => this.#tables.health(kind, cells));
      this.#wakeAll(app);
    });
  }

  /** A machine that moved to another app leaves the old one first (in the old app's shard). */
  async #leavePreviousApp(machine: MachineEntry): Promise<void> {
    const previous = machine.app;
    await this.#applyWrite(this.#shardOf(previous), 'machines', previous, undefined, () =>
      this.#tables.forgetMachine(machine.id),
    );
  }

  /**
   * A stream started over: changes may have been missed. The old rows keep serving meanwhile
   * (no request sees an empty table). Eager mode, and the global tables in both modes: the new
   * rows are kept beside the old table and swapped in whole at the stream's `ready` (#swapIn).
   * Lazy mode: every app held keeps serving its rows and is read again from corrosion in the
   * background once every stream is attached (#pumpResyncs), swapped in per app; loads in
   * flight fail (their buffered changes may miss some), and the negative caches are forgotten.
   */
  async #reset(table: FollowedTable): Promise<void> {
    const global = (globalTables as readonly string[]).includes(table);
    if (global || this.mode === 'eager') {
      this.#rebuild.set(table, []);
      // Not served yet (a stream that started over during its first rows): nothing to
      // protect, so the table is emptied now and its rows apply in place as they come.
      if (!this.#served.has(table)) return this.#swapIn(table);
      return;
    }
    for (const pending of this.#loading.values()) pending.overflow = true;
    this.#hostCache.clear();
    this.#negativeApps.clear();
    const nowMs = Date.now();
    for (const shard of this.#shards) {
      for (const app of shard.state.keys()) this.#resyncs.schedule(app, 'reset', nowMs);
    }
  }

  /** A stream delivered its initial rows: swap a rebuilt table in, then count it attached. */
  async #attach(table: FollowedTable): Promise<void> {
    if (this.#rebuild.has(table)) await this.#swapIn(table);
    this.#attached.add(table);
    this.#served.add(table);
  }

  /**
   * Swaps the rows kept since a reset in for the old table: one write per shard (the global
   * lock for hosts and regions) forgets that table's old rows and applies the new ones in the
   * same synchronous closure, so a reader sees an app's old rows or its new ones, never none.
   * The writes are queued before anything awaits, so changes after `ready` apply on top.
   */
  #swapIn(table: FollowedTable): Promise<void> {
    const rows = this.#rebuild.get(table) ?? [];
    this.#rebuild.delete(table);
    if ((globalTables as readonly string[]).includes(table)) {
      return this.#globalTables.swap(table, rows);
    }
    const byShard: unknown[][][] = this.#shards.map(() => []);
    const orphans: unknown[][] = [];
    for (const cells of rows) {
      const app =
        table === 'health_checks'
          ? this.#tables.machines.get(String(cells[0]))?.app
          : appOf(table, cells);
      if (app === undefined) orphans.push(cells);
      else
        present(byShard[shardIndex(app, this.#shards.length)], 'a shard of the swap').push(cells);
    }
    if (table === 'health_checks') this.#tables.orphanChecks.clear();
    const writes = this.#shards.map((shard, index) => {
      const shardRows = present(byShard[index], 'a shard of the swap');
      return shard
        .write(`reset-${table}`, { table }, (apps) => {
          this.#tables.reset(apps, table);
          for (const cells of shardRows) this.#swapRow(apps, table, cells);
        })
        .catch((error: unknown) => {
          // The shard kept its old rows of the table: each of its apps, and each app the new
          // rows name, is read again from corrosion (a lock refusal is no app's fault).
          this.#metrics.updateFailures.add(1, { label: `reset-${table}` });
          this.#options.logger.error({ err: error, table, shard: index }, 'catalog swap failed');
          const apps = new Set(shard.state.keys());
          for (const cells of shardRows) apps.add(this.#appOfRow(table, cells));
          apps.delete('');
          for (const app of apps) this.#updateFailed(app, table, undefined, error);
        });
    });
    for (const cells of orphans)
      this.#guardRow(table, cells, () => this.#tables.health('upsert', cells));
    return Promise.all(writes).then(noop);
  }

  /** One row of a swap: a row whose application throws quarantines its app, not the swap. */
  #swapRow(apps: ShardState, table: FollowedTable, cells: unknown[]): void {
    try {
      this.#applyRow(apps, table, 'upsert', cells);
    } catch (error) {
      const app = this.#appOfRow(table, cells);
      if (app !== '') this.#updateFailed(app, table, undefined, error);
    }
  }

  /** The app a row belongs to; a health check's through its machine ('' when not held). */
  #appOfRow(table: FollowedTable, cells: unknown[]): string {
    if (table !== 'health_checks') return appOf(table, cells);
    return this.#tables.machines.get(String(cells[0]))?.app ?? '';
  }

  /** Lazy mode: past maxLoadedApps, evict the least recently used idle apps down to 90 %. */
  #evictIdle(): void {
    if (this.mode !== 'lazy') return;
    let held = 0;
    for (const shard of this.#shards) held += shard.state.size;
    const max = this.#options.maxLoadedApps;
    if (held <= max) return;
    const idle: AppEntry[] = [];
    for (const shard of this.#shards) {
      for (const entry of shard.state.values()) {
        if (!this.#loading.has(entry.name) && entry.machines.every((machine) => machine.load === 0))
          idle.push(entry);
      }
    }
    idle.sort((a, b) => a.usedTick - b.usedTick);
    const excess = held - Math.floor(max * 0.9);
    for (const entry of idle.slice(0, excess)) {
      const app = entry.name;
      void this.#write(this.#shardOf(app), 'evict', { app }, (apps) => {
        if (apps.get(app) === entry) this.#tables.drop(apps, app);
      }).then(() => this.#metrics.evictions.add(1));
    }
  }

  /** Applies one app row, counting (never throwing) a row that cannot be used. */
  #applyRow(apps: ShardState, table: FollowedTable, kind: RowKind, cells: unknown[]): void {
    this.#guardRow(table, cells, () => this.#tables.apply(apps, table, kind, cells));
  }

  #guardRow(table: FollowedTable, cells: unknown[], apply: () => unknown): void {
    try {
      apply();
      this.#metrics.applied.add(1, { table });
    } catch (error) {
      if (!(error instanceof BadRowError)) throw error;
      this.#rejectedRows++;
      this.#metrics.badRows.add(1, { table });
      this.#options.logger.warn(
        { table, cells: loggableCells(table, cells), reason: error.message },
        'catalog skipped a bad row',
      );
    }
  }

  /** A write that fails is logged and counted; a load's failure is rethrown (to its loader). */
  #write<T, R>(
    guarded: Guarded<T>,
    label: string,
    context: Record<string, string>,
    fn: (state: T) => R | Promise<R>,
  ): Promise<R | undefined> {
    return guarded.write(label, context, fn).catch((error: unknown) => {
      this.#metrics.updateFailures.add(1, { label });
      this.#options.logger.error({ err: error, ...context, label }, 'catalog update failed');
      if (label === 'load-app') throw error;
      return undefined;
    }) as Promise<R | undefined>;
  }

  /** One change stream update of an app, under its shard's write lock; never lost (#updateFailed). */
  #applyWrite(
    shard: Guarded<ShardState>,
    table: FollowedTable,
    app: string,
    changeId: number | undefined,
    fn: (apps: ShardState) => void,
  ): Promise<void> {
    const label = `apply-${table}`;
    return shard.write(label, { app, table }, fn).catch((error: unknown) => {
      this.#metrics.updateFailures.add(1, { label });
      this.#options.logger.error(
        { err: error, app, table, changeId, label },
        'catalog update failed',
      );
      this.#updateFailed(app, table, changeId, error);
    });
  }

  /**
   * An update of `app` that did not apply is never dropped. When the update is at fault (its
   * application threw, or re-entered a lock: seed 002) the app is quarantined: it keeps serving
   * its last rows, its later updates wait for a resync, every other app goes on. When its lock
   * only refused it (a write timeout, a full queue) the app is read again from corrosion at once
   * in the background (and on its next use, whichever comes first).
   */
  #updateFailed(app: string, table: FollowedTable, changeId: number | undefined, error: unknown) {
    const reason = faultOf(error);
    const nowMs = Date.now();
    if (reason === undefined) {
      this.#stale.add(app);
      this.#resyncs.schedule(app, 'refused', nowMs);
      return;
    }
    if (this.#quarantine.has(app)) {
      this.#quarantine.retryLater(app, nowMs); // its resync met the fault again
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    this.#quarantine.add({ app, table, reason, atMs: nowMs, changeId, error: message });
    this.#stale.delete(app);
    this.#resyncs.done(app);
    this.#metrics.quarantined.add(1, { reason });
    this.#options.logger.error(
      { app, table, changeId, reason, err: error },
      'catalog quarantined an app: an update to it is at fault; other apps are unaffected',
    );
  }

  /** An app was read again from corrosion and applied cleanly. */
  #reloaded(app: string): void {
    this.#resyncs.done(app);
    const released = this.#quarantine.release(app);
    if (released === undefined) return;
    this.#metrics.quarantineReleased.add(1);
    this.#options.logger.warn(
      { app, table: released.table, changeId: released.changeId, retries: released.retries },
      'catalog released an app from quarantine: its resync applied cleanly',
    );
  }

  /** Runs every `upkeepMs` while following: probe, resyncs, expiry of unreachable marks. */
  #upkeep(client: CorrosionClient, signal: AbortSignal): void {
    if (signal.aborted) return;
    const nowMs = Date.now();
    if (!this.#probing && nowMs >= this.#nextProbeMs) this.#probe(client, nowMs);
    this.#pumpResyncs(client);
    this.#expireUnreachable();
  }

  /** Asks the agent a trivial query: an answer confirms quiet tables (see freshness.ts). */
  #probe(client: CorrosionClient, nowMs: number): void {
    const intervalMs = Math.max(1, Math.floor(this.#options.staleAfterMs / 3));
    this.#probing = true;
    this.#nextProbeMs = nowMs + intervalMs;
    client
      .query('SELECT 1', { signal: AbortSignal.timeout(intervalMs) })
      .then(
        () => this.#freshness.agentAnswered(nowMs),
        () => undefined, // no answer: the tables' ages speak
      )
      .finally(() => {
        this.#probing = false;
      });
  }

  /**
   * Starts resyncs that are due, as many as the loader has free slots (requests' loads come
   * first), once every stream is attached (a load before that could miss changes).
   */
  #pumpResyncs(client: CorrosionClient): void {
    if (!this.#attachedAll()) return;
    this.#globalTables.pump(client);
    const nowMs = Date.now();
    const free = this.#options.loadConcurrencyMax - this.#loader.running - this.#loader.queued;
    for (const app of this.#resyncs.take(nowMs, free)) this.#resync(client, app, false);
    if (this.#quarantine.size === 0) return;
    for (const app of this.#quarantine.due(nowMs)) {
      this.#quarantine.begin(app);
      this.#resync(client, app, true);
    }
  }

  #resync(client: CorrosionClient, app: string, quarantined: boolean): void {
    if (!quarantined && this.mode === 'lazy' && !this.#shardOf(app).state.has(app)) {
      this.#resyncs.done(app); // evicted meanwhile: loaded afresh on its next use
      return;
    }
    this.#loader
      .load(`app:${app}`, app, (signal) => this.#loadApp(client, app, signal))
      .then(
        () => undefined, // #loadApp released or re-quarantined the app
        (error: unknown) => {
          const nowMs = Date.now();
          if (quarantined) this.#quarantine.retryLater(app, nowMs);
          else if (!this.#resyncs.failed(app, nowMs)) {
            this.#options.logger.warn(
              { app, err: error },
              'catalog gave up resyncing an app; it is reloaded on its next use',
            );
          }
        },
      )
      .finally(() => this.#pumpResyncs(client));
  }

  #expireUnreachable(): void {
    if (this.#unreachable.size === 0) return;
    const nowTick = this.#nowTick();
    for (const [id, machine] of this.#unreachable) {
      if (machine.unreachableUntilTick > nowTick) continue;
      machine.unreachableUntilTick = 0;
      this.#unreachable.delete(id);
    }
  }

  #attachedAll(): boolean {
    return this.#attached.size === followedCount;
  }

  #wakeAll(app: string): void {
    if (this.#admissionWaiting > 0) this.#admission.wake(app, this.#options.admissionQueueMax);
  }

  #contextFor(options: RouteOptions): RouteContext {
    if (options.preferRegion === undefined) return this.#route;
    const preferred = this.#global.state.regions.get(options.preferRegion);
    return { ...this.#route, localRegion: preferred ?? this.#route.localRegion };
  }

  #shardOf(app: string): Guarded<ShardState> {
    return present(this.#shards[shardIndex(app, this.#shards.length)], 'the shard of an app');
  }

  #nowTick(): number {
    return Math.floor((Date.now() - this.#epochMs) / tickMs);
  }

  #notReady(what: string): CatalogError {
    return new CatalogError(
      'CATALOG_ERR_NOT_READY',
      `catalog: cannot load ${what} before every change stream is attached`,
    );
  }

  #remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    if (map.size >= this.#options.negativeEntriesMax) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
    map.set(key, value);
  }
}

function noop(): void {}

/**
 * A Host header's name as routing compares it: without a `:port`, without a trailing dot,
 * lowercase. Read by character: it runs for every request.
 */
function hostName(host: string): string {
  let end = host.length;
  let digits = end;
  while (digits > 0 && isDigit(host.charCodeAt(digits - 1))) digits -= 1;
  if (digits < end && digits > 0 && host.charCodeAt(digits - 1) === 58 /* ':' */) end = digits - 1;
  if (end > 0 && host.charCodeAt(end - 1) === 46 /* '.' */) end -= 1;
  return (end === host.length ? host : host.slice(0, end)).toLowerCase();
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

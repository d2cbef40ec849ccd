import { present } from '@fleet/service/invariant';
import type { Interner } from './intern.js';
import { emptyServices } from './intern.js';
import { AppEntry, Certificate, MachineEntry, type ServiceSpec } from './model.js';
import {
  type FollowedTable,
  healthFromCells,
  machineFromCells,
  serviceFromCells,
  text,
} from './rows.js';
import type { ShardState } from './shard.js';
import type { Topology } from './topology.js';

/** A row event for one app table: `upsert` for current rows, inserts and updates. */
export type RowKind = 'upsert' | 'delete';

/** Critical checks of machines not known yet (eager mode: tables stream in any order). */
export const orphanChecksMax = 10_000;

/**
 * The per-app tables and the indexes across them. Every method is synchronous and runs inside
 * the write closure of the shard that holds the app (`apps`), so a change is applied whole or
 * not at all. The machine and hostname indexes span shards; they are only touched in those
 * synchronous steps, so no reader can see them half-changed.
 */
export class AppTables {
  /** machine id → machine, across every shard. */
  readonly machines = new Map<string, MachineEntry>();
  /** hostname → app, for the apps held (every app in eager mode). */
  readonly hostnames = new Map<string, string>();
  /** machine id → names of its critical checks, for machines not seen yet. */
  readonly orphanChecks = new Map<string, Set<string>>();

  constructor(
    private readonly topology: Topology,
    private readonly interner: Interner,
    /** Finds an app's entry in whichever shard holds it (a machine that changed app). */
    private readonly entryOf: (app: string) => AppEntry | undefined,
    private readonly keepOrphans: boolean,
  ) {}

  entry(apps: ShardState, app: string): AppEntry {
    let entry = apps.get(app);
    if (entry === undefined) {
      entry = new AppEntry(app);
      apps.set(app, entry);
    }
    return entry;
  }

  /**
   * Applies one row. Returns false for a health check of a machine not held (the caller keeps
   * it for a load in flight). Throws BadRowError for a row it cannot use.
   */
  apply(apps: ShardState, table: FollowedTable, kind: RowKind, cells: unknown[]): boolean {
    switch (table) {
      case 'apps':
        this.#app(apps, kind, cells);
        return true;
      case 'app_hostnames':
        this.#hostname(apps, kind, cells);
        return true;
      case 'machines':
        this.#machine(apps, kind, cells);
        return true;
      case 'services':
        this.#service(apps, kind, cells);
        return true;
      case 'health_checks':
        return this.health(kind, cells);
      case 'certificates':
        this.#certificate(apps, kind, cells);
        return true;
      default:
        throw new Error(`table ${table} is not an app table`);
    }
  }

  #app(apps: ShardState, kind: RowKind, cells: unknown[]): void {
    const entry = this.entry(apps, text(cells, 0, 'apps', 'name'));
    entry.known = kind === 'upsert';
    entry.org = this.interner.string(typeof cells[1] === 'string' ? cells[1] : '');
    entry.network = this.interner.string(typeof cells[2] === 'string' ? cells[2] : '');
  }

  #hostname(apps: ShardState, kind: RowKind, cells: unknown[]): void {
    const hostname = text(cells, 0, 'app_hostnames', 'hostname').toLowerCase();
    const app = text(cells, 1, 'app_hostnames', 'app');
    const previous = this.hostnames.get(hostname);
    if (previous !== undefined) {
      const owner = apps.get(previous) ?? this.entryOf(previous);
      if (owner) owner.hostnames = owner.hostnames.filter((name) => name !== hostname);
      this.hostnames.delete(hostname);
    }
    if (kind === 'delete') return;
    const entry = this.entry(apps, app);
    entry.hostnames.push(hostname);
    this.hostnames.set(hostname, app);
  }

  #certificate(apps: ShardState, kind: RowKind, cells: unknown[]): void {
    const hostname = text(cells, 0, 'certificates', 'hostname').toLowerCase();
    const entry = this.entry(apps, text(cells, 1, 'certificates', 'app'));
    if (kind === 'delete') {
      entry.certificates?.delete(hostname);
      return;
    }
    const certificate = new Certificate(
      hostname,
      entry.name,
      text(cells, 2, 'certificates', 'cert_pem'),
      text(cells, 3, 'certificates', 'sealed_key'),
      typeof cells[4] === 'string' ? cells[4] : '',
    );
    entry.certificates ??= new Map();
    entry.certificates.set(hostname, certificate);
  }

  #machine(apps: ShardState, kind: RowKind, cells: unknown[]): void {
    let machine = this.machines.get(text(cells, 0, 'machines', 'id'));
    if (kind === 'delete') {
      // Only the key matters: a delete may carry nothing but it.
      if (machine === undefined) return;
      if (machine.services.length > 0) {
        machine.state = ''; // its services rows are still there: keep it, never route to it
        machine.privateAddr = null;
      } else this.#forget(machine);
      return;
    }
    const row = machineFromCells(cells);
    let services = emptyServices;
    if (machine !== undefined && machine.app !== row.app) {
      services = machine.services; // moved to another app: it keeps its services
      this.#forget(machine);
      machine = undefined;
    }
    const region = this.topology.region(this.interner.string(row.region));
    const host = this.topology.host(this.interner.string(row.hostId));
    const state = this.interner.string(row.state);
    machine ??= this.#attach(apps, row.id, row.app, services);
    machine.state = state;
    machine.privateAddr = row.privateAddr;
    machine.instanceId = row.instanceId;
    machine.regionEntry = region;
    machine.hostEntry = host;
  }

  #service(apps: ShardState, kind: RowKind, cells: unknown[]): void {
    const machineId = text(cells, 0, 'services', 'machine_id');
    const internalPort = cells[1];
    let machine = this.machines.get(machineId);
    if (kind === 'delete') {
      if (machine === undefined) return;
      machine.services = this.interner.list(
        machine.services.filter((spec) => spec.internalPort !== internalPort),
      );
      if (machine.services.length === 0 && machine.state === '') this.#forget(machine);
      return;
    }
    const row = serviceFromCells(cells);
    machine ??= this.#attach(apps, machineId, row.app, emptyServices);
    const others = machine.services.filter((spec) => spec.internalPort !== row.internalPort);
    machine.services = this.interner.list([...others, this.interner.spec(row)]);
  }

  /** Applies a health check; false when its machine is not held here. */
  health(kind: RowKind, cells: unknown[]): boolean {
    const row = healthFromCells(cells);
    const critical = kind === 'upsert' && row.status === 'critical';
    const machine = this.machines.get(row.machineId);
    if (machine === undefined) {
      if (this.keepOrphans) this.#orphan(row.machineId, row.name, critical);
      return false;
    }
    const others = (machine.critical ?? []).filter((name) => name !== row.name);
    if (critical) others.push(row.name);
    machine.critical = others.length > 0 ? others : null;
    return true;
  }

  #orphan(machineId: string, name: string, critical: boolean): void {
    const names = this.orphanChecks.get(machineId);
    if (!critical) {
      names?.delete(name);
      if (names?.size === 0) this.orphanChecks.delete(machineId);
      return;
    }
    if (names !== undefined) names.add(name);
    else if (this.orphanChecks.size < orphanChecksMax)
      this.orphanChecks.set(machineId, new Set([name]));
  }

  /** A placeholder until its machine row arrives: no state, never routed to. */
  #attach(
    apps: ShardState,
    id: string,
    app: string,
    services: readonly ServiceSpec[],
  ): MachineEntry {
    const entry = this.entry(apps, app);
    const machine = new MachineEntry(
      id,
      entry.name,
      '',
      null,
      '',
      this.topology.region(''),
      this.topology.host(''),
      services,
    );
    machine.slot = entry.machines.length;
    entry.machines.push(machine);
    this.machines.set(id, machine);
    const orphaned = this.orphanChecks.get(id);
    if (orphaned !== undefined) {
      machine.critical = [...orphaned];
      this.orphanChecks.delete(id);
    }
    return machine;
  }

  #detach(machine: MachineEntry): void {
    const entry = this.entryOf(machine.app);
    if (entry === undefined) return;
    // the machine is in its app's array (at its slot), so the array is not empty
    const last = present(entry.machines.pop(), "the last machine of the machine's app");
    if (last !== machine) {
      entry.machines[machine.slot] = last;
      last.slot = machine.slot;
    }
    machine.slot = -1;
  }

  #forget(machine: MachineEntry): void {
    this.#detach(machine);
    this.machines.delete(machine.id);
  }

  /** Forgets a machine entirely (it moved to an app this Catalog does not hold). */
  forgetMachine(machineId: string): void {
    const machine = this.machines.get(machineId);
    if (machine !== undefined) this.#forget(machine);
  }

  /**
   * Replaces an app's rows with what `apply` installs, keeping the MachineEntry objects of the
   * machines that are still there (their load counters and the release functions of requests in
   * flight stay valid): every row of the app is forgotten first, `apply` puts back what
   * corrosion has, and a machine nothing put back is removed.
   */
  reload(apps: ShardState, app: string, apply: () => void): void {
    const entry = apps.get(app);
    if (entry === undefined) {
      apply();
      return;
    }
    for (const hostname of entry.hostnames) {
      if (this.hostnames.get(hostname) === app) this.hostnames.delete(hostname);
    }
    entry.hostnames = [];
    entry.certificates = null;
    entry.known = false;
    const before = [...entry.machines];
    for (const machine of before) {
      machine.services = emptyServices;
      machine.critical = null;
      machine.state = '';
      machine.privateAddr = null;
    }
    apply();
    for (const machine of before) {
      if (machine.state === '' && machine.services.length === 0 && machine.slot !== -1)
        this.#forget(machine);
    }
  }

  /** Drops an app and everything it holds (lazy eviction, or a reload replacing it). */
  drop(apps: ShardState, app: string): void {
    const entry = apps.get(app);
    if (entry === undefined) return;
    for (const machine of entry.machines) {
      machine.slot = -1;
      if (this.machines.get(machine.id) === machine) this.machines.delete(machine.id);
    }
    for (const hostname of entry.hostnames) {
      if (this.hostnames.get(hostname) === app) this.hostnames.delete(hostname);
    }
    apps.delete(app);
  }

  /**
   * A subscription started over (eager mode): forget that table's rows in this shard (the
   * caller applies the new rows in the same closure, and clears `orphanChecks` first).
   */
  reset(apps: ShardState, table: FollowedTable): void {
    for (const entry of apps.values()) {
      if (table === 'apps') entry.known = false;
      else if (table === 'certificates') entry.certificates = null;
      else if (table === 'app_hostnames') {
        for (const hostname of entry.hostnames) this.hostnames.delete(hostname);
        entry.hostnames = [];
      } else {
        for (const machine of [...entry.machines]) {
          if (table === 'health_checks') machine.critical = null;
          else if (table === 'services') machine.services = emptyServices;
          else {
            machine.state = '';
            machine.privateAddr = null;
          }
          if (machine.state === '' && machine.services.length === 0) this.#forget(machine);
        }
      }
    }
  }
}

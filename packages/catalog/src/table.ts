import {
  type FollowedTable,
  keyOf,
  type MachineEntry,
  machineFromCells,
  type ServiceEntry,
  serviceFromCells,
} from './rows.js';

export type RouteDecision =
  | { kind: 'ok'; machine: MachineEntry }
  | { kind: 'no-app' }
  | { kind: 'no-machine'; reason: string };

/**
 * The routing table itself: plain maps, no locking (the Catalog guards every access with its
 * RwLock). Rows are keyed by their primary key, so a change event carries all it needs.
 */
export class RoutingTable {
  readonly apps = new Set<string>();
  readonly hostnames = new Map<string, string>();
  readonly machines = new Map<string, MachineEntry>();
  readonly machinesByApp = new Map<string, Set<string>>();
  readonly services = new Map<string, ServiceEntry>();
  readonly httpServices = new Map<string, number>();
  /** machine id → names of its critical health checks. */
  readonly critical = new Map<string, Set<string>>();
  readonly #cursor = new Map<string, number>();

  /** Forgets every row of one table (a subscription started over). */
  clear(table: FollowedTable): void {
    if (table === 'apps') this.apps.clear();
    if (table === 'app_hostnames') this.hostnames.clear();
    if (table === 'machines') {
      this.machines.clear();
      this.machinesByApp.clear();
    }
    if (table === 'services') {
      this.services.clear();
      this.httpServices.clear();
    }
    if (table === 'health_checks') this.critical.clear();
  }

  /** Applies a current or changed row; throws BadRowError for a row it cannot use. */
  upsert(table: FollowedTable, cells: unknown[]): void {
    if (table === 'apps') this.apps.add(String(cells[0]));
    else if (table === 'app_hostnames')
      this.hostnames.set(String(cells[0]).toLowerCase(), String(cells[1]));
    else if (table === 'machines') this.putMachine(machineFromCells(cells));
    else if (table === 'services') this.putService(keyOf(table, cells), serviceFromCells(cells));
    else this.putHealth(String(cells[0]), String(cells[1]), String(cells[2]));
  }

  remove(table: FollowedTable, cells: unknown[]): void {
    if (table === 'apps') this.apps.delete(String(cells[0]));
    else if (table === 'app_hostnames') this.hostnames.delete(String(cells[0]).toLowerCase());
    else if (table === 'machines') this.dropMachine(String(cells[0]));
    else if (table === 'services') this.dropService(keyOf(table, cells));
    else this.putHealth(String(cells[0]), String(cells[1]), 'gone');
  }

  /** Picks a started machine with an HTTP service and no critical check, round robin. */
  route(app: string): RouteDecision {
    const ids = this.machinesByApp.get(app);
    if (!this.apps.has(app) && !ids) return { kind: 'no-app' };
    const states = new Map<string, number>();
    const routable: MachineEntry[] = [];
    for (const id of ids ?? []) {
      const machine = this.machines.get(id)!;
      states.set(machine.state, (states.get(machine.state) ?? 0) + 1);
      if (machine.state !== 'started' || machine.privateAddr === null) continue;
      if (!this.httpServices.get(id) || this.critical.get(id)?.size) continue;
      routable.push(machine);
    }
    if (routable.length === 0) return { kind: 'no-machine', reason: noMachineReason(app, states) };
    const turn = this.#cursor.get(app) ?? 0;
    this.#cursor.set(app, turn + 1);
    return { kind: 'ok', machine: routable[turn % routable.length]! };
  }

  private putMachine(machine: MachineEntry): void {
    const previous = this.machines.get(machine.id);
    if (previous && previous.app !== machine.app)
      this.machinesByApp.get(previous.app)?.delete(machine.id);
    this.machines.set(machine.id, machine);
    const ids = this.machinesByApp.get(machine.app) ?? new Set<string>();
    this.machinesByApp.set(machine.app, ids);
    ids.add(machine.id);
  }

  private dropMachine(id: string): void {
    const machine = this.machines.get(id);
    if (!machine) return;
    this.machines.delete(id);
    const ids = this.machinesByApp.get(machine.app);
    ids?.delete(id);
    if (ids?.size === 0) this.machinesByApp.delete(machine.app);
  }

  private putService(key: string, service: ServiceEntry): void {
    this.dropService(key);
    this.services.set(key, service);
    if (service.http)
      this.httpServices.set(service.machineId, (this.httpServices.get(service.machineId) ?? 0) + 1);
  }

  private dropService(key: string): void {
    const service = this.services.get(key);
    if (!service) return;
    this.services.delete(key);
    if (!service.http) return;
    const left = (this.httpServices.get(service.machineId) ?? 1) - 1;
    if (left > 0) this.httpServices.set(service.machineId, left);
    else this.httpServices.delete(service.machineId);
  }

  private putHealth(machineId: string, name: string, status: string): void {
    const names = this.critical.get(machineId);
    if (status === 'critical') {
      this.critical.set(machineId, (names ?? new Set<string>()).add(name));
    } else {
      names?.delete(name);
      if (names?.size === 0) this.critical.delete(machineId);
    }
  }
}

function noMachineReason(app: string, states: Map<string, number>): string {
  if (states.size === 0) return `app ${app} has no machines`;
  const counts = [...states].map(([state, count]) => `${count} ${state}`).join(', ');
  const started = states.get('started') ?? 0;
  const why = started > 0 ? `; the ${started} started without a healthy HTTP service` : '';
  return `app ${app} has no started machine to take the request (${counts}${why})`;
}

import { flapsError } from '../errors.js';
import { hostStatusOf } from '../host-status.js';
import type { FleetState, MachineRow } from '../state.js';

/** The worker API (flyd's base URL) that owns a machine of an app. */
export type Owner = (app: string, id: string) => Promise<string>;

export interface MachineLookup {
  /** The machine's row, or 404 when it is not one of this app's. */
  machineOf(app: string, id: string): Promise<MachineRow>;
  /** The worker that owns the machine; 503 at once when its host is down or unknown. */
  owner: Owner;
}

export function machineLookup(state: FleetState): MachineLookup {
  const machineOf = async (appName: string, id: string) => {
    const machine = await state.machine(id);
    if (!machine || machine.app !== appName) {
      // The app exists (server.ts checks before any route): the machine is what is missing.
      throw flapsError('FLAPS_ERR_MACHINE_NOT_FOUND', `machine ${id} not found in app ${appName}`);
    }
    return machine;
  };
  const owner = async (appName: string, id: string) => {
    const machine = await machineOf(appName, id);
    if (hostStatusOf(machine.host_state) === 'unreachable')
      throw flapsError(
        'FLAPS_ERR_WORKER_UNREACHABLE',
        `machine ${id}: its host ${machine.host_id} is down (its corrosion is dead to the cluster)`,
      );
    const host = await state.worker(machine.host_id);
    if (!host?.flyd_addr)
      throw flapsError(
        'FLAPS_ERR_WORKER_UNREACHABLE',
        `machine ${id}: its worker ${machine.host_id} is unknown`,
      );
    return host.flyd_addr;
  };
  return { machineOf, owner };
}

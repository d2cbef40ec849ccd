import { imageRefParts } from '@fleet/images';
import type { MachineEvent, MachineRecord } from './machine-store.js';

/** The Machine object flyd answers with, in the shape of Fly's Machines API. */
export function machineView(machine: MachineRecord, hostId: string, events: MachineEvent[]) {
  return {
    id: machine.id,
    name: machine.name,
    app: machine.app,
    state: machine.state,
    region: machine.region,
    host_id: hostId,
    instance_id: machine.instance_id,
    version: machine.instance_id,
    private_addr: privateAddr(machine),
    private_ip: machine.port === null ? null : (machine.ip ?? '127.0.0.1'),
    cordoned: machine.cordoned,
    config: machine.config,
    image_ref: { registry: 'local', ...imageRefParts(machine.image_ref) },
    created_at: machine.created_at,
    updated_at: machine.updated_at,
    events,
  };
}

export type MachineView = ReturnType<typeof machineView>;

/** Where the proxy reaches the machine: its own address, else its port of the host's loopback. */
export function privateAddr(machine: MachineRecord): string | null {
  return machine.port === null ? null : `${machine.ip ?? '127.0.0.1'}:${machine.port}`;
}

import { guestOf, type MachineConfig, type MachineRecord } from './machine-store.js';

/** What this worker offers (`--cpus`, `--memory-mb`), published in its `hosts` row. */
export interface HostCapacity {
  cpus: number;
  memoryMb: number;
}

/**
 * [cpus reserved, memory reserved, machine count] of the machines that exist on this host: every
 * machine not destroyed keeps its guest's reservation, a stopped one too (it may start at any
 * moment, as on Fly).
 */
export function reservations(machines: MachineRecord[]): [number, number, number] {
  const live = machines.filter((machine) => machine.state !== 'destroyed');
  const cpus = live.reduce((sum, machine) => sum + guestOf(machine.config).cpus, 0);
  const memory = live.reduce((sum, machine) => sum + guestOf(machine.config).memoryMb, 0);
  return [cpus, memory, live.length];
}

/** Dedicated cores the `performance` machines among `machines` reserve (not destroyed). */
function performanceCpus(machines: MachineRecord[]): number {
  return machines
    .filter((machine) => machine.state !== 'destroyed' && isPerformance(machine.config))
    .reduce((sum, machine) => sum + guestOf(machine.config).cpus, 0);
}

function isPerformance(config: MachineConfig): boolean {
  return config.guest?.cpu_kind === 'performance';
}

/**
 * Why a machine with `config` does not fit beside `machines` on a host of `capacity`, naming what
 * it needs and what is free; undefined when it fits. Memory counts for every machine. CPUs count
 * for `performance` machines only: each of their vCPUs is a dedicated core of `--cpus`. Shared
 * vCPUs are oversubscribed, as on Fly (a baseline of 1/16 core each, docs "CPU Performance"): a
 * 2-core worker runs dozens of shared-cpu-1x machines, and memory is what bounds them.
 */
export function capacityShortfall(
  capacity: HostCapacity,
  machines: MachineRecord[],
  config: MachineConfig,
): string | undefined {
  const [, memoryMbReserved] = reservations(machines);
  const memoryMbFree = capacity.memoryMb - memoryMbReserved;
  const cpusFree = capacity.cpus - performanceCpus(machines);
  const needs = guestOf(config);
  const cpusNeeded = isPerformance(config) ? needs.cpus : 0;
  if (needs.memoryMb <= memoryMbFree && cpusNeeded <= cpusFree) return undefined;
  const asked = cpusNeeded > 0 ? ` and ${cpusNeeded} performance CPUs` : '';
  return (
    `the machine needs ${needs.memoryMb} MB${asked}; this worker has ` +
    `${Math.max(0, memoryMbFree)} MB and ${Math.max(0, cpusFree)} performance CPUs free ` +
    `(of ${capacity.memoryMb} MB and ${capacity.cpus} CPUs)`
  );
}

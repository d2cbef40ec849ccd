import { readFileSync } from 'node:fs';
import { isRunning, procStat } from '@fleet/service/proc-stat';

/**
 * What tells a machine's process from another that got its pid later: the kernel's start time of
 * the pid (field 22 of /proc/<pid>/stat, in clock ticks since boot), recorded at launch.
 */
export interface ProcessIdentity {
  pid: number;
  startTime: string;
}

/** The pid's start time, or undefined when no such process runs (a zombie does not run). */
export function startTimeOf(pid: number): string | undefined {
  return isRunning(pid) ? procStat(pid)?.startTime : undefined;
}

/**
 * Whether `identity` is still the machine's process: the pid runs, started when the recorded one
 * did, and its environment names the machine (and this worker). A recycled pid fails the start
 * time; a process that cannot be read is not adopted.
 */
export function isMachineProcess(
  identity: ProcessIdentity,
  machineId: string,
  hostId: string,
): boolean {
  if (startTimeOf(identity.pid) !== identity.startTime) return false;
  try {
    const environ = readFileSync(`/proc/${identity.pid}/environ`, 'latin1').split('\0');
    return (
      environ.includes(`FLY_MACHINE_ID=${machineId}`) &&
      !environ.some(
        (pair) => pair.startsWith('FLEET_HOST_ID=') && pair !== `FLEET_HOST_ID=${hostId}`,
      )
    );
  } catch {
    return false;
  }
}

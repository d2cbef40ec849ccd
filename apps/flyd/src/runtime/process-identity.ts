import { readFileSync } from 'node:fs';

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
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: the fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
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

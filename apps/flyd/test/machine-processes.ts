import { readdirSync, readFileSync } from 'node:fs';

/** Pids of live (non-zombie) processes running a machine, found by FLY_MACHINE_ID in /proc. */
export function machinePids(machineId: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        if (/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'))) return false;
        return readFileSync(`/proc/${pid}/environ`, 'latin1')
          .split('\0')
          .includes(`FLY_MACHINE_ID=${machineId}`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

import { readdirSync, readFileSync } from 'node:fs';
import { isRunning } from '@fleet/service/proc-stat';

/** Pids of live (non-zombie) processes running a machine, found by FLY_MACHINE_ID in /proc. */
export function machinePids(machineId: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        if (!isRunning(pid)) return false;
        return readFileSync(`/proc/${pid}/environ`, 'latin1')
          .split('\0')
          .includes(`FLY_MACHINE_ID=${machineId}`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

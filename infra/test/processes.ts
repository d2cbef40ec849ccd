import { readdirSync, readFileSync } from 'node:fs';

/** Pids of live processes whose environment has `name=value` (how machines are found). */
export function pidsWithEnv(name: string, value: string): number[] {
  const needle = `${name}=${value}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (`${readFileSync(`/proc/${entry}/environ`, 'latin1')}\0`.includes(needle)) {
        pids.push(Number(entry));
      }
    } catch {
      // The process ended while we looked, or is not ours to read.
    }
  }
  return pids;
}

/** True while the pid names a process that has not exited (zombies count as gone). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

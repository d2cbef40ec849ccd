import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { procStat, withDescendants } from '@fleet/service';

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

/** A process as seen once: its pid, start time (to tell a reused pid) and command line. */
export interface Seen {
  pid: number;
  startTime: string;
  cmdline: string;
}

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
}

/** `pid` and every live process below it (children, their children...), as they are now. */
export function processTree(pid: number): Seen[] {
  return withDescendants(pid).flatMap((current) => {
    const info = procStat(current);
    return info && info.state !== 'Z'
      ? [{ pid: current, startTime: info.startTime, cmdline: cmdlineOf(current) }]
      : [];
  });
}

/** Live processes whose command line names `dir` or whose working directory is inside it. */
export function processesUsing(dir: string): Seen[] {
  const found: Seen[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const info = procStat(pid);
    if (!info || info.state === 'Z' || pid === process.pid) continue;
    let cwd = '';
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // gone meanwhile, or not ours to read
    }
    const cmdline = cmdlineOf(pid);
    if (cmdline.includes(dir) || cwd === dir || cwd.startsWith(`${dir}/`))
      found.push({ pid, startTime: info.startTime, cmdline });
  }
  return found;
}

/** Those of `seen` still alive: same pid and same start time (a reused pid is someone else). */
export function stillAlive(seen: Seen[]): Seen[] {
  return seen.filter((one) => {
    const info = procStat(one.pid);
    return info !== undefined && info.state !== 'Z' && info.startTime === one.startTime;
  });
}

/**
 * Polls until none of `seen` is alive and no process uses `dir`, for at most `waitMsMax`;
 * returns what is left (empty when everything went).
 */
export async function leftAfter(seen: Seen[], dir: string, waitMsMax = 30_000): Promise<Seen[]> {
  const deadline = Date.now() + waitMsMax;
  for (;;) {
    const left = [...stillAlive(seen), ...processesUsing(dir)];
    if (left.length === 0 || Date.now() >= deadline) {
      return [...new Map(left.map((one) => [one.pid, one])).values()];
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

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

/** A process as seen once: its pid, start time (to tell a reused pid) and command line. */
export interface Seen {
  pid: number;
  startTime: string;
  cmdline: string;
}

function stat(pid: number): { ppid: number; startTime: string; zombie: boolean } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the command name (which may hold spaces and parentheses).
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), startTime: fields[19]!, zombie: fields[0] === 'Z' };
  } catch {
    return undefined;
  }
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
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = stat(Number(entry));
    if (!info || info.zombie) continue;
    parents.set(info.ppid, [...(parents.get(info.ppid) ?? []), Number(entry)]);
  }
  const tree: Seen[] = [];
  const visit = (current: number) => {
    const info = stat(current);
    if (info && !info.zombie)
      tree.push({ pid: current, startTime: info.startTime, cmdline: cmdlineOf(current) });
    for (const child of parents.get(current) ?? []) visit(child);
  };
  visit(pid);
  return tree;
}

/** Live processes whose command line names `dir` or whose working directory is inside it. */
export function processesUsing(dir: string): Seen[] {
  const found: Seen[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const info = stat(pid);
    if (!info || info.zombie || pid === process.pid) continue;
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
    const info = stat(one.pid);
    return info !== undefined && !info.zombie && info.startTime === one.startTime;
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

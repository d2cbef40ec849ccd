import { readdirSync, readFileSync } from 'node:fs';

/** What Linux's /proc/<pid>/stat says of a process (proc(5)), the fields Fleet reads. */
export interface ProcStat {
  /** One letter: R, S, D, T, Z (a zombie: exited, not yet reaped), X (dead)… */
  state: string;
  ppid: number;
  /** Process group. */
  pgrp: number;
  /** CPU time used, user and system, in milliseconds. */
  cpuMs: number;
  /** CPU time used in the kernel, in milliseconds. */
  systemMs: number;
  /** When the process started, in clock ticks since boot: with the pid, what tells it from a later one. */
  startTime: string;
  rssBytes: number;
}

const ticksPerSecond = 100; // USER_HZ on Linux
const pageBytes = 4096;

/** The pid's /proc stat fields, or undefined when no such process exists (or it vanished). */
export function procStat(pid: number | string): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: the fields after its last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    state: fields[0] ?? '',
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    cpuMs: ((Number(fields[11]) + Number(fields[12])) / ticksPerSecond) * 1000,
    systemMs: (Number(fields[12]) / ticksPerSecond) * 1000,
    startTime: fields[19] ?? '',
    rssBytes: Number(fields[21]) * pageBytes,
  };
}

/** Whether the pid names a process that has not exited: a zombie or a dead one counts as gone. */
export function isRunning(pid: number | string): boolean {
  const state = procStat(pid)?.state;
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/**
 * Every running process's pid under its parent's pid, each read once from /proc. Zombies are
 * left out: they have exited, and their children were handed to another parent when they did.
 */
export function childrenByParent(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (stat === undefined || stat.state === 'Z' || stat.state === 'X') continue;
    const siblings = children.get(stat.ppid);
    if (siblings) siblings.push(Number(entry));
    else children.set(stat.ppid, [Number(entry)]);
  }
  return children;
}

/**
 * `pids` themselves, then every running process descended from one of them (children, their
 * children…), each once, from one reading of /proc: what to signal to end a tree, or to watch go.
 */
export function withDescendants(pids: number | readonly number[]): number[] {
  const children = childrenByParent();
  // A Set iterates what is added during the walk, once each: at most every process of the reading.
  const found = new Set(typeof pids === 'number' ? [pids] : pids);
  for (const pid of found) for (const child of children.get(pid) ?? []) found.add(child);
  return [...found];
}

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { constants } from 'node:os';
import { present } from '@fleet/service/invariant';
import { procStat } from '@fleet/service/proc-stat';

/** A process of a machine, in the shape of Fly's `MachineProcess`. */
export interface MachineProcess {
  pid: number;
  command: string;
  directory: string;
  /** CPU time used, ms. */
  cpu: number;
  /** Resident memory, bytes. */
  rss: number;
  /** Time since the process started, ms. */
  rtime: number;
  stime: number;
}

const ticksPerSecond = 100; // USER_HZ on Linux

/** The processes of a machine's process group (its leader is the machine's pid), from /proc. */
export function machineProcesses(groupId: number): MachineProcess[] {
  const uptimeMs = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
  const processes: MachineProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (stat?.pgrp !== groupId) continue;
    try {
      const startMs = (Number(stat.startTime) / ticksPerSecond) * 1000;
      processes.push({
        pid: Number(entry),
        command: readFileSync(`/proc/${entry}/cmdline`, 'utf8')
          .split('\0')
          .filter(Boolean)
          .join(' '),
        directory: readlinkSync(`/proc/${entry}/cwd`),
        cpu: stat.cpuMs,
        rss: stat.rssBytes,
        rtime: Math.max(0, Math.round(uptimeMs - startMs)),
        stime: stat.systemMs,
      });
    } catch {
      // The process ended while we looked: it is not one of them any more.
    }
  }
  return processes.sort((a, b) => a.pid - b.pid);
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exit_code: number;
  exit_signal: number;
  /** Present (true) when stdout or stderr passed `outputBytesMax` and was cut there (Fleet's). */
  truncated?: true;
}

/** Output kept per stream; more is read and dropped, and `truncated` says so. */
export const outputBytesMax = 1024 * 1024;

/**
 * Runs a command the way the machine's own process runs (its environment and directory), in
 * the machine: `command` comes already wrapped to join the machine's cgroup when the host has
 * one (its limits apply, and stop ends it with the machine). The command gets a process group
 * of its own; on timeout the whole group is killed, so `sh -c "sleep 777 & sleep 778"` leaves
 * nothing behind. Fly's `MachineExecResponse` shape.
 */
export function execInMachine(
  command: string[],
  options: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<ExecResult> {
  const [file, ...args] = command;
  return new Promise((resolve, reject) => {
    const child = spawn(present(file, 'the command (inMachine wraps every one)'), args, {
      cwd: options.cwd,
      env: options.env,
      detached: true, // its own process group, killed whole on timeout
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let truncated = false;
    const collect = (stream: NodeJS.ReadableStream) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      stream.on('data', (chunk: Buffer) => {
        const room = outputBytesMax - bytes;
        if (chunk.length > room) truncated = true;
        if (room <= 0) return;
        const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
        chunks.push(kept);
        bytes += kept.length;
      });
      return () => Buffer.concat(chunks).toString('utf8');
    };
    const stdout = collect(present(child.stdout, 'the piped stdout'));
    const stderr = collect(present(child.stderr, 'the piped stderr'));
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL'); // none: it never ran
      } catch {
        // the group is gone already
      }
    };
    const timer = setTimeout(killGroup, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error); // the command could not run at all (ENOENT, EACCES)
    });
    // 'close': the command exited and every holder of its output closed it (or was killed).
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        stdout: stdout(),
        stderr: stderr(),
        exit_code: code ?? -1,
        exit_signal: signal ? (osSignals[signal] ?? 0) : 0,
        ...(truncated ? { truncated: true as const } : {}),
      });
    });
  });
}

const osSignals = constants.signals as Record<string, number>;

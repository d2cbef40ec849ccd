import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { constants } from 'node:os';

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
const pageBytes = 4096;

/** The processes of a machine's process group (its leader is the machine's pid), from /proc. */
export function machineProcesses(groupId: number): MachineProcess[] {
  const uptimeMs = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
  const processes: MachineProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces: fields start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== groupId) continue; // field 5: process group
      const cpuTicks = Number(fields[11]) + Number(fields[12]); // utime + stime
      const startMs = (Number(fields[19]) / ticksPerSecond) * 1000;
      processes.push({
        pid: Number(entry),
        command: readFileSync(`/proc/${entry}/cmdline`, 'utf8')
          .split('\0')
          .filter(Boolean)
          .join(' '),
        directory: readlinkSync(`/proc/${entry}/cwd`),
        cpu: (cpuTicks / ticksPerSecond) * 1000,
        rss: Number(fields[21]) * pageBytes,
        rtime: Math.max(0, Math.round(uptimeMs - startMs)),
        stime: (Number(fields[12]) / ticksPerSecond) * 1000,
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
}

const outputBytesMax = 1024 * 1024;

/**
 * Runs a command the way the machine's own process runs (its environment and directory), with
 * a timeout and bounded output; Fly's `MachineExecResponse` shape.
 */
export function execInMachine(
  command: string[],
  options: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<ExecResult> {
  const [file, ...args] = command;
  return new Promise((resolve, reject) => {
    execFile(
      file!,
      args,
      {
        cwd: options.cwd,
        env: options.env,
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: outputBytesMax,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        const failure = error as
          | (NodeJS.ErrnoException & { code?: unknown; signal?: string })
          | null;
        if (failure && typeof failure.code === 'string') {
          reject(failure); // the command could not run at all (ENOENT, EACCES)
          return;
        }
        const signal = failure?.signal ? (osSignals[failure.signal] ?? 0) : 0;
        resolve({
          stdout,
          stderr,
          exit_code: typeof failure?.code === 'number' ? failure.code : failure ? -1 : 0,
          exit_signal: signal,
        });
      },
    );
  });
}

const osSignals = constants.signals as Record<string, number>;

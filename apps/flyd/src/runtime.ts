import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { type Cgroups, inGroups, type MachineLimits } from './cgroups.js';
import type { ResolvedImage } from './images.js';
import { LogRing } from './log-ring.js';
import type { LogSink } from './log-sink.js';

export interface LaunchSpec {
  machineId: string;
  image: ResolvedImage;
  /** Its working directory: its own root (machine-root.ts). */
  dir: string;
  env: Record<string, string>;
  limits: MachineLimits;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The kernel killed it for going over its memory limit. */
  oomKilled: boolean;
  /** True when flyd asked for the exit (stop, destroy, shutdown). */
  requested: boolean;
}

interface Running {
  child: ChildProcess;
  exited: Promise<ExitInfo>;
  stopping: boolean;
}

/**
 * Runs machines as supervised processes, each in its own process group (stop signals the whole
 * tree). Output is read continuously, line by line, into a bounded ring per machine, so a
 * machine's writes never wait on a reader (seed 003).
 */
export class ProcessRuntime {
  readonly #running = new Map<string, Running>();
  readonly #logs = new Map<string, LogRing>();

  constructor(
    private readonly onExit: (machineId: string, exit: ExitInfo) => void,
    private readonly sink?: LogSink,
    /** Where memory and CPU limits are enforced; without it they are not. */
    private readonly cgroups?: Cgroups,
  ) {}

  /** Whether machines' memory and CPU limits are enforced on this host. */
  get enforcesLimits(): boolean {
    return this.cgroups !== undefined;
  }

  isRunning(machineId: string): boolean {
    return this.#running.has(machineId);
  }

  logs(machineId: string): LogRing {
    const ring = this.#logs.get(machineId) ?? new LogRing();
    this.#logs.set(machineId, ring);
    return ring;
  }

  /** Starts the machine's process; resolves with its pid once it has spawned. */
  start(spec: LaunchSpec): Promise<number> {
    const { machineId } = spec;
    // Behind the cgroup shell a missing command would be an exit 127, not the spawn error it is.
    if (this.cgroups) assertExecutable(spec.image.cmd[0]!, spec.env, spec.dir);
    const [command, ...args] = this.cgroups
      ? inGroups(this.cgroups.create(machineId, spec.limits), spec.image.cmd)
      : spec.image.cmd;
    const child = spawn(command!, args, {
      cwd: spec.dir,
      env: spec.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const ring = this.logs(spec.machineId);
    for (const stream of ['stdout', 'stderr'] as const) {
      const input = child[stream]!;
      if (this.sink)
        this.sink.follow(spec.machineId, stream, input, (line) => ring.push(stream, line));
      else followLines(input, (line) => ring.push(stream, line));
    }
    const running: Running = {
      child,
      stopping: false,
      exited: new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          this.#killRest(machineId, child.pid!, spec.env.FLEET_HOST_ID);
          const oomKilled = this.cgroups?.oomKilled(machineId) ?? false;
          this.cgroups?.remove(machineId);
          resolve({ code, signal, oomKilled, requested: running.stopping });
        });
      }),
    };
    return new Promise((resolve, reject) => {
      child.once('error', (error) => {
        this.#running.delete(spec.machineId);
        reject(error);
      });
      child.once('spawn', () => {
        this.#running.set(spec.machineId, running);
        void running.exited.then((exit) => {
          if (this.#running.get(spec.machineId) === running) this.#running.delete(spec.machineId);
          this.onExit(spec.machineId, exit);
        });
        resolve(child.pid!);
      });
    });
  }

  /** Signals the process group, then SIGKILLs it after `timeoutMs`; resolves once it exited. */
  async stop(
    machineId: string,
    signal: NodeJS.Signals,
    timeoutMs: number,
  ): Promise<ExitInfo | undefined> {
    const running = this.#running.get(machineId);
    if (!running) return undefined;
    running.stopping = true;
    signalGroup(running.child.pid!, signal);
    signalGroup(running.child.pid!, 'SIGCONT'); // a paused (SIGSTOPped) machine must see the signal too
    const timer = setTimeout(() => signalGroup(running.child.pid!, 'SIGKILL'), timeoutMs);
    const exit = await running.exited;
    clearTimeout(timer);
    signalGroup(running.child.pid!, 'SIGKILL'); // children the machine left behind in its group
    return exit;
  }

  /**
   * The machine is its main process: once that exits (stopped or by itself), nothing it started
   * may outlive it, as a VM's processes end with its init. Its process group is killed, and what
   * left the group (setsid) is found in its cgroup or, without one, by its FLY_MACHINE_ID.
   */
  #killRest(machineId: string, pid: number, hostId: string | undefined): void {
    signalGroup(pid, 'SIGKILL');
    if (!this.cgroups) {
      killLeftovers(new Set([machineId]), hostId);
      return;
    }
    for (const rest of this.cgroups.procs(machineId)) {
      try {
        process.kill(rest, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }

  /**
   * `command` as run inside the machine's cgroup (as it is on a host without cgroups). Throws
   * ENOENT for a command that is not there, as spawning it would: behind the joining shell it
   * would be an exit 127 instead.
   */
  inMachine(
    machineId: string,
    command: string[],
    where: { env: Record<string, string>; cwd: string },
  ): string[] {
    if (!this.cgroups) return command;
    assertExecutable(command[0]!, where.env, where.cwd);
    return inGroups(this.cgroups.procsFiles(machineId), command);
  }

  /** Signals the machine's process group; false when it has no running process. */
  signal(machineId: string, signal: NodeJS.Signals): boolean {
    const running = this.#running.get(machineId);
    if (!running) return false;
    signalGroup(running.child.pid!, signal);
    return true;
  }

  /** Drops a destroyed machine's log ring. */
  forget(machineId: string): void {
    this.#logs.delete(machineId);
  }

  runningIds(): string[] {
    return [...this.#running.keys()];
  }
}

/** The longest piece of a line without end that is kept (the ring cuts lines shorter still). */
const pendingCharsMax = 64 * 1024;

/**
 * Calls `onLine` with each line of `input`. A line without end is cut to its last
 * `pendingCharsMax` characters as it grows (as LogSink does), so a machine that never writes a
 * newline cannot grow flyd's memory (readline buffers such a line whole).
 */
function followLines(input: Readable, onLine: (line: string) => void): void {
  let pending = '';
  input.setEncoding('utf8');
  input.on('data', (chunk: string) => {
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
    }
    if (pending.length > pendingCharsMax) pending = pending.slice(-pendingCharsMax);
  });
  input.once('end', () => {
    if (pending.length > 0) onLine(pending);
  });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

/**
 * Kills every process a previous flyd left running for these machines (it was killed with them
 * running). The machines are found by their FLY_MACHINE_ID in /proc, not by a recorded pid: flyd
 * can die between spawning a machine and recording its pid. Returns the pids killed.
 */
export function killLeftovers(machineIds: Set<string>, hostId?: string): number[] {
  const killed: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return killed; // no /proc: nothing to find
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0');
      const variable = environ.find((pair) => pair.startsWith('FLY_MACHINE_ID='));
      // A machine that migrated away may run under another flyd of this host (tests run two
      // workers on one host): only processes this worker launched are its leftovers.
      const host = environ.find((pair) => pair.startsWith('FLEET_HOST_ID='));
      const ours = hostId === undefined || host === undefined || host === `FLEET_HOST_ID=${hostId}`;
      if (ours && variable && machineIds.has(variable.slice('FLY_MACHINE_ID='.length))) {
        process.kill(Number(entry), 'SIGKILL');
        killed.push(Number(entry));
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  // Wait (bounded) until they are gone, so a relaunch does not find their port still taken.
  const deadline = Date.now() + 2_000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (killed.some(isAlive) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 10);
  return killed;
}

/** A killed process is gone once it is a zombie: its reaper (not us: its parent died) may be slow. */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

/** Throws spawn's ENOENT when `command` (a path, or a name looked up in PATH) cannot be run. */
function assertExecutable(command: string, env: Record<string, string>, cwd: string): void {
  const candidates = command.includes('/')
    ? [resolve(cwd, command)]
    : (env.PATH ?? '')
        .split(':')
        .filter(Boolean)
        .map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return;
    } catch {
      // not this one
    }
  }
  throw Object.assign(new Error(`spawn ${command} ENOENT`), { code: 'ENOENT' });
}

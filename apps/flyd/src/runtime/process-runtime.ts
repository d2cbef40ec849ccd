import { type ChildProcess, spawn } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { present } from '@fleet/service/invariant';
import { isRunning } from '@fleet/service/proc-stat';
import type { ResolvedImage } from '../images/resolve.js';
import type { LogFeed } from '../logs/feed.js';
import type { LogSink } from '../logs/sink.js';
import { type Cgroups, inGroups, joinGroups, type MachineLimits } from './cgroups.js';
import { go, heldCommand, made } from './launch-handshake.js';
import type { MachineNetwork } from './machine-network.js';
import type { MachineUser, MachineUsers } from './machine-users.js';
import { OutputTail } from './output-tail.js';
import { isMachineProcess, type ProcessIdentity, startTimeOf } from './process-identity.js';

export interface LaunchSpec {
  machineId: string;
  image: ResolvedImage;
  /** Its working directory: its own root (machines/root.ts). */
  dir: string;
  /** Resolves once `dir` is ready; the command never runs before (see `start`). */
  rootReady: Promise<void>;
  /** Where its output files and process record are kept: they outlive its root and flyd. */
  stateDir: string;
  env: Record<string, string>;
  limits: MachineLimits;
  /** The user it runs as (machine-users.ts); undefined where flyd cannot switch users. */
  user: MachineUser | undefined;
  /** Its address in a network of its own (machine-network.ts, `prepare`d); none on the host's. */
  ip: string | null;
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
  pid: number;
  exited: Promise<ExitInfo>;
  stopping: boolean;
  /** Stops watching the process and its output, leaving it running (flyd leaves). */
  release: () => void;
}

/** A machine's output file is emptied once read past this size (see OutputTail). */
const outputFileBytesMax = 16 * 1024 * 1024;
/** How often an adopted machine (not flyd's child: no exit event) is checked for its exit. */
const exitPollMs = 100;

/**
 * Runs machines as processes detached from flyd: each in its own session and process group
 * (stop signals the whole tree), its stdout and stderr appended to files of its own that flyd
 * follows (output-tail.ts), so a machine neither blocks on a reader (seed 003) nor loses its
 * output channel when flyd exits. Its pid and start time are recorded beside them, so a flyd
 * started again adopts the process (`adopt`) instead of launching another.
 */
export class ProcessRuntime {
  readonly #running = new Map<string, Running>();

  constructor(
    private readonly onExit: (machineId: string, exit: ExitInfo) => void,
    /** Where every line of the machines' output goes (the logs routes read it). */
    private readonly feed: LogFeed,
    private readonly sink?: LogSink,
    /** Where memory and CPU limits are enforced; without it they are not. */
    private readonly cgroups?: Cgroups,
    /** The users machines run as; without them, as flyd's own user. */
    private readonly users?: MachineUsers,
    /** A network namespace per machine; without, machines share the host's. */
    readonly network?: MachineNetwork,
  ) {}

  /** Whether machines' memory and CPU limits are enforced on this host. */
  get enforcesLimits(): boolean {
    return this.cgroups !== undefined;
  }

  isRunning(machineId: string): boolean {
    return this.#running.has(machineId);
  }

  /** The user machine `machineId` runs as, allocated at its first launch here. */
  userOf(machineId: string): MachineUser | undefined {
    return this.users?.userOf(machineId);
  }

  /**
   * Starts the machine's process; resolves with its pid once its command runs. It is spawned at
   * once, and runs its command only when its root (`rootReady`), its cgroups and its network are
   * ready, all made side by side (launch-handshake.ts).
   */
  start(spec: LaunchSpec): Promise<number> {
    const { machineId } = spec;
    const asUser = this.#asUser(spec.user, spec.image.cmd);
    const command =
      this.network && spec.ip !== null
        ? this.network.wrap(machineId, spec.ip, spec.dir, asUser)
        : heldCommand(spec.dir, asUser);
    const groups = this.cgroups?.create(machineId, spec.limits);
    mkdirSync(spec.stateDir, { recursive: true });
    const files = outputFiles(spec.stateDir);
    const stdout = openSync(files.stdout, 'a');
    const stderr = openSync(files.stderr, 'a');
    let child: ChildProcess;
    try {
      child = spawn(present(command[0], 'the command'), command.slice(1), {
        cwd: spec.stateDir, // it enters its root once that is ready
        env: spec.env,
        detached: true, // its own session: flyd's terminal or exit signals do not reach it
        stdio: ['ignore', stdout, stderr, 'pipe'], // fd 3: the handshake
      });
    } finally {
      closeSync(stdout);
      closeSync(stderr);
    }
    const tails = this.#follow(machineId, spec.stateDir);
    const running: Running = {
      pid: 0,
      stopping: false,
      release: () => {
        child.removeAllListeners('exit');
        child.unref();
        for (const tail of tails) tail.release();
      },
      exited: new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          for (const tail of tails) tail.finish();
          resolve(
            this.#ended(machineId, running.pid, spec.env.FLEET_HOST_ID, running, code, signal),
          );
        });
      }),
    };
    return new Promise((resolve, reject) => {
      child.once('error', (error) => {
        for (const tail of tails) tail.release();
        this.#running.delete(spec.machineId);
        reject(error);
      });
      child.once('spawn', () => {
        const pid = present(child.pid, 'the pid of a spawned process');
        running.pid = pid; // before its exit: 'exit' comes after 'spawn'
        const startTime = startTimeOf(pid);
        if (startTime !== undefined)
          writeFileSync(
            join(spec.stateDir, processFile),
            JSON.stringify({ pid, startTime } satisfies ProcessIdentity),
          );
        // Watched once its command runs: a machine that fails before never ran (killed here, its
        // exit cleans up as any exit does, and no one records it).
        const control = child.stdio[3] as Duplex;
        this.#ready(spec, pid, groups, control).then(
          () => {
            go(control);
            this.#watch(machineId, running);
            resolve(pid);
          },
          (error: unknown) => {
            control.destroy();
            signalGroup(pid, 'SIGKILL'); // the launch discards what is left of its network
            reject(error);
          },
        );
      });
    });
  }

  /**
   * Everything machine `spec` waits for before its command runs: in its cgroups (moved from here,
   * where the kernel's grace period for it overlaps the rest), in its network (`made`, then the
   * host end of a new link), and its root ready with the command there.
   */
  async #ready(
    spec: LaunchSpec,
    pid: number,
    groups: string[] | undefined,
    control: Duplex,
  ): Promise<void> {
    const steps = [
      made(spec.machineId, control).then(() =>
        spec.ip !== null ? this.network?.attach(spec.machineId, spec.ip) : undefined,
      ),
      spec.rootReady.then(() => {
        // Behind its first process a missing command would be an exit 127, not the spawn error
        // it is; a relative command is looked up in the root.
        assertExecutable(present(spec.image.cmd[0], 'the image command'), spec.env, spec.dir);
      }),
      groups && joinGroups(groups, pid),
    ];
    // Every step settled before the launch answers, so a failed one leaves none running; the
    // first failure named is the likeliest cause (a process that ended cannot join its groups).
    const results = await Promise.allSettled(steps);
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }

  /**
   * Takes over a machine process a previous flyd launched and left running: only when the
   * recorded process is still the machine's (same pid and start time, its FLY_MACHINE_ID and
   * this worker's FLEET_HOST_ID), so a recycled pid is never adopted. Its output is followed from
   * where the last flyd stopped; its exit is found by polling (it is not flyd's child), with an
   * unknown exit code. Whether it was adopted.
   */
  adopt(machineId: string, stateDir: string, pid: number, hostId: string): boolean {
    const identity = readIdentity(stateDir);
    if (identity?.pid !== pid || !isMachineProcess(identity, machineId, hostId)) return false;
    const tails = this.#follow(machineId, stateDir);
    let timer: NodeJS.Timeout | undefined;
    const running: Running = {
      pid,
      stopping: false,
      release: () => {
        clearInterval(timer);
        for (const tail of tails) tail.release();
      },
      exited: new Promise((resolve) => {
        timer = setInterval(() => {
          if (isMachineProcess(identity, machineId, hostId)) return;
          clearInterval(timer);
          for (const tail of tails) tail.finish();
          resolve(this.#ended(machineId, pid, hostId, running, null, null));
        }, exitPollMs);
      }),
    };
    this.#watch(machineId, running);
    return true;
  }

  /**
   * Lets every machine run on without flyd: stops following their processes and output (the
   * offsets read are kept for the next flyd, which adopts them).
   */
  release(): void {
    for (const running of this.#running.values()) running.release();
    this.#running.clear();
  }

  #watch(machineId: string, running: Running): void {
    this.#running.set(machineId, running);
    void running.exited.then((exit) => {
      if (this.#running.get(machineId) === running) this.#running.delete(machineId);
      this.onExit(machineId, exit);
    });
  }

  /** Follows the machine's output files into the log feed and the log sink. */
  #follow(machineId: string, stateDir: string): OutputTail[] {
    const files = outputFiles(stateDir);
    return (['stdout', 'stderr'] as const).map((stream) => {
      const tail = new OutputTail(files[stream], outputFileBytesMax);
      const onLine = (line: string) => this.feed.append(machineId, stream, line);
      if (this.sink) this.sink.follow(machineId, stream, tail.output, onLine);
      else followLines(tail.output, onLine);
      return tail;
    });
  }

  /** The machine's main process is gone: the rest of it goes too, and its cgroup. */
  #ended(
    machineId: string,
    pid: number,
    hostId: string | undefined,
    running: Running,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): ExitInfo {
    this.#killRest(machineId, pid, hostId);
    this.network?.stopped(machineId);
    const oomKilled = this.cgroups?.oomKilled(machineId) ?? false;
    this.cgroups?.remove(machineId);
    return { code, signal, oomKilled, requested: running.stopping };
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
    signalGroup(running.pid, signal);
    signalGroup(running.pid, 'SIGCONT'); // a paused (SIGSTOPped) machine must see the signal too
    const timer = setTimeout(() => signalGroup(running.pid, 'SIGKILL'), timeoutMs);
    const exit = await running.exited;
    clearTimeout(timer);
    signalGroup(running.pid, 'SIGKILL'); // children the machine left behind in its group
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
   * `command` as run inside the machine: in its cgroup, as its user (each where this host has
   * them). Throws ENOENT for a command that is not there, as spawning it would: behind the
   * joining shell or setpriv it would be an exit 127 instead.
   */
  inMachine(
    machineId: string,
    command: string[],
    where: { env: Record<string, string>; cwd: string },
  ): string[] {
    const user = this.users?.existing(machineId);
    const pid = this.#running.get(machineId)?.pid;
    const ownNetwork = pid !== undefined && this.network?.ownsNetwork(pid) === true;
    if (!this.cgroups && !user && !ownNetwork) return command;
    assertExecutable(present(command[0], 'the command'), where.env, where.cwd);
    const asUser = this.#asUser(user, command);
    // In the machine's network too, when it has its own: its localhost, its ports.
    const networked =
      ownNetwork && this.network ? this.network.enter(pid as number, asUser) : asUser;
    return this.cgroups ? inGroups(this.cgroups.procsFiles(machineId), networked) : networked;
  }

  #asUser(user: MachineUser | undefined, command: string[]): string[] {
    return user && this.users ? this.users.command(user, command) : command;
  }

  /** A line of flyd's own in the machine's logs (on stderr): what the machine should know. */
  note(machineId: string, line: string): void {
    this.feed.append(machineId, 'stderr', line);
  }

  /** Signals the machine's process group; false when it has no running process. */
  signal(machineId: string, signal: NodeJS.Signals): boolean {
    const running = this.#running.get(machineId);
    if (!running) return false;
    signalGroup(running.pid, signal);
    return true;
  }

  /**
   * Drops a destroyed (or migrated away) machine's kept output lines and network, and gives its
   * user back.
   */
  async forget(machineId: string): Promise<void> {
    this.feed.forget(machineId);
    this.users?.release(machineId);
    await this.network?.release(machineId);
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
  // Wait (bounded) until they are gone, so a relaunch does not find their port still taken. A
  // killed process is gone once it is a zombie: its reaper (not us: its parent died) may be slow.
  const deadline = Date.now() + 2_000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (killed.some(isRunning) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 10);
  return killed;
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

/** The record of a machine's running process, beside its output files. */
const processFile = 'process.json';

/** A machine's output files: appended to by the machine, read by flyd. */
function outputFiles(stateDir: string): { stdout: string; stderr: string } {
  return { stdout: join(stateDir, 'stdout.log'), stderr: join(stateDir, 'stderr.log') };
}

function readIdentity(stateDir: string): ProcessIdentity | undefined {
  try {
    const record = JSON.parse(readFileSync(join(stateDir, processFile), 'utf8')) as ProcessIdentity;
    return Number.isInteger(record.pid) && typeof record.startTime === 'string'
      ? record
      : undefined;
  } catch {
    return undefined;
  }
}

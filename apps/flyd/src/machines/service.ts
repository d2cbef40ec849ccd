import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { FlydClient } from '@fleet/flyd-client';
import { HttpError, type Logger } from '@fleet/service';
import { flydError } from '../errors.js';
import {
  type FsmEngine,
  RunConflictError,
  type RunHandle,
  UnrecoverableError,
} from '../fsm/engine.js';
import type { ImageCache } from '../images/cache.js';
import { imageDigest, resolveImage } from '../images/resolve.js';
import { checkMigratable, defineMigrateAction, type MigrateRequest } from '../migrate/migrate.js';
import type { Publisher } from '../publishing/publisher.js';
import type { ExitInfo, ProcessRuntime } from '../runtime/process-runtime.js';
import { mountOf } from '../volumes/mounts.js';
import { rowWaitMs, type VolumeService } from '../volumes/service.js';
import {
  type CreateRequest,
  type DestroyRequest,
  defineMachineActions,
  type MachineSteps,
  newVersion,
  type StopRequest,
  type UpdateRequest,
} from './actions.js';
import type { AppSecrets } from './app-secrets.js';
import { bootMachines } from './boot.js';
import { BusyWaits } from './busy-waits.js';
import type { HostCapacity } from './capacity.js';
import { MachineDirs, type RootDisks } from './dirs.js';
import { machineEnv } from './environment.js';
import { type ExecResult, execInMachine, type MachineProcess, machineProcesses } from './exec.js';
import { launchMachine } from './launch.js';
import { hidePaths } from './launch-errors.js';
import type {
  MachineConfig,
  MachineEvent,
  MachineRecord,
  MachineState,
  MachineStore,
} from './machine-store.js';
import { afterExit } from './restart-policy.js';
import { RestartScheduler } from './restarts.js';
import { checkFiles, checkMountOverImage } from './root.js';
import { type StopSettings, stopConfigOf, stopSettings } from './stop-config.js';

export type { CreateRequest, StopRequest };

export interface MachineServiceOptions {
  dataDir: string;
  /** The local image store (`--images-dir`), if any. */
  imagesDir: string | undefined;
  /** Images pulled from flaps by digest (`name@sha256:...` configs). */
  imageCache: ImageCache;
  /** The app's secrets, opened at each launch and exec (app-secrets.ts). */
  secrets: AppSecrets;
  region: string;
  hostId: string;
  stopTimeoutMs: number;
  /** How long a starting machine may take to listen on its service port. */
  listenWaitMs: number;
  /** The processes and threads one machine may have at once (`--machine-pids-max`). */
  machinePidsMax: number;
  /** What this worker offers (`--cpus`, `--memory-mb`): a create that does not fit is refused. */
  capacity: HostCapacity;
  /**
   * How long an operation on a machine busy with another waits for it before 409 (`--busy-wait-ms`),
   * and how many may wait at once for one machine (`--busy-waiters-max`).
   */
  busyWaitMs: number;
  busyWaitersMax: number;
  /** Where machine roots live (`--roots-dir`), and as disks of what size (`--disks`, `--machine-root-gb`). */
  roots: RootDisks;
  logger: Logger;
}

/**
 * The machine operations of this worker. Each runs as an FSM (create, start, stop, destroy);
 * every state change is recorded locally, logged as an event and published to corrosion.
 */
export class MachineService {
  readonly #changes = new EventEmitter();
  readonly #restarts: RestartScheduler;
  readonly #busy: BusyWaits;
  readonly #dirs: MachineDirs;

  constructor(
    private readonly store: MachineStore,
    private readonly engine: FsmEngine,
    private readonly runtime: ProcessRuntime,
    private readonly publisher: Publisher,
    private readonly options: MachineServiceOptions,
    private readonly volumes: VolumeService,
    peer: FlydClient,
  ) {
    this.#changes.setMaxListeners(0); // one per long-poll `wait`, each bounded by its timeout
    this.#restarts = new RestartScheduler(store, engine, (...run) => this.#start(...run));
    this.#busy = new BusyWaits(engine, options.busyWaitMs, options.busyWaitersMax);
    this.#dirs = new MachineDirs(options.dataDir, options.imagesDir, options.roots);
    const steps: MachineSteps = {
      store,
      runtime,
      dirs: this.#dirs,
      options,
      setState: (...change) => void this.#setState(...change),
      record: (...change) => this.#record(...change),
      publish: (id) => publisher.machineChanged(id),
      launch: (id) => this.#launch(id),
      launchFailed: (id, error) => this.#launchFailed(id, error),
      attachMounts: (id, config) => volumes.attach(id, config),
      detachMounts: (id) => volumes.detach(id),
    };
    defineMachineActions(engine, steps);
    defineMigrateAction(engine, {
      ...steps,
      volumes,
      peer,
      hostId: options.hostId,
      forget: (id) => {
        store.remove(id);
        void publisher.hostChanged(); // its capacity is free again
      },
    });
  }

  /** Calls `listener` with the machine after each of its state changes. */
  onStateChange(listener: (machine: MachineRecord) => void): void {
    this.#changes.on('state', listener);
  }

  get(id: string): MachineRecord {
    const machine = this.store.get(id);
    if (!machine) throw flydError('FLYD_ERR_NOT_FOUND', `machine ${id} not found`);
    return machine;
  }

  /** The machine's record, if this worker has it. */
  find(id: string): MachineRecord | undefined {
    return this.store.get(id);
  }

  /**
   * Records the machine and answers once it is `created`; the launch goes on in the background.
   * The answer is the machine as it was created, with its events then (Fly's create answers
   * `created`): by the time the run reports its publish step, the launch may have moved on.
   */
  async create(
    request: CreateRequest,
  ): Promise<{ machine: MachineRecord; events: MachineEvent[] }> {
    const release = await this.#holdImage(request.config);
    try {
      return await this.#create(request);
    } finally {
      release();
    }
  }

  /**
   * Pulls a config's image by digest the first time this worker needs it, and holds it against
   * the cache's eviction until the returned release (the machine's record then keeps it).
   */
  async #holdImage(config: MachineConfig): Promise<() => void> {
    const digest = imageDigest(config);
    return digest === undefined ? () => {} : this.options.imageCache.hold(digest);
  }

  async #create(
    request: CreateRequest,
  ): Promise<{ machine: MachineRecord; events: MachineEvent[] }> {
    // The route checked the config against its schema (@fleet/machine-config); what follows
    // needs this worker: the image, what the files would overwrite in it, the stop settings.
    const image = this.#checkRunnable(request.config);
    const id = request.id ?? randomBytes(7).toString('hex');
    if (this.store.get(id)) throw flydError('FLYD_ERR_EXISTS', `machine ${id} already exists`);
    this.volumes.checkMounts(request.config, request.app, id);
    const from = request.migrated_from;
    if (from && !(await this.publisher.awaitRow('machines', id, from.updated_at, rowWaitMs))) {
      throw flydError(
        'FLYD_ERR_FAILED',
        `machine ${id}: its row from ${from.host_id} has not reached this worker's corrosion yet`,
      );
    }
    let created: { machine: MachineRecord; events: MachineEvent[] } | undefined;
    const onCreated = (machine: MachineRecord) => {
      if (machine.id === id && machine.state === 'created')
        created ??= { machine, events: this.store.events(id) };
    };
    this.#changes.on('state', onCreated);
    try {
      const run = this.#start(id, 'create', {
        ...request,
        id,
        image_ref: image.ref,
        instance_id: newVersion(),
      });
      await this.#outcome(run.reached('publish'), id, 'create');
    } finally {
      this.#changes.off('state', onCreated);
    }
    return created ?? { machine: this.get(id), events: this.store.events(id) };
  }

  async start(id: string): Promise<{ previous_state: MachineState }> {
    await this.#busy.whenFree(id);
    const machine = this.get(id);
    if (machine.state === 'suspended') {
      await this.#outcome(this.#start(id, 'resume', {}).done, id, 'resume');
      return { previous_state: machine.state };
    }
    if (!['created', 'stopped', 'started'].includes(machine.state)) {
      throw flydError(
        'FLYD_ERR_PRECONDITION',
        `machine ${id} is ${machine.state}; only a stopped machine starts`,
      );
    }
    this.#restarts.reset(id);
    if (machine.state !== 'started')
      await this.#outcome(this.#start(id, 'start', {}).done, id, 'start');
    return { previous_state: machine.state };
  }

  /** Pauses a started machine (SIGSTOP to its process group); `start` resumes it. */
  async suspend(id: string): Promise<void> {
    await this.#busy.whenFree(id);
    const machine = this.get(id);
    if (machine.state === 'suspended') return;
    if (machine.state !== 'started') {
      throw flydError(
        'FLYD_ERR_PRECONDITION',
        `machine ${id} is ${machine.state}; only a started machine suspends`,
      );
    }
    this.#restarts.cancel(id);
    await this.#outcome(this.#start(id, 'suspend', {}).done, id, 'suspend');
  }

  /** Stops the machine with the caller's signal and grace period, else its stop_config's. */
  async stop(id: string, asked: StopSettings): Promise<void> {
    await this.#busy.whenFree(id);
    const machine = this.get(id);
    this.#restarts.cancel(id);
    if (machine.state === 'stopped' || machine.state === 'created') return;
    if (!['started', 'starting', 'suspended'].includes(machine.state)) {
      throw flydError(
        'FLYD_ERR_PRECONDITION',
        `machine ${id} is ${machine.state}; it cannot be stopped`,
      );
    }
    const request: StopRequest = stopSettings(asked, machine.config, this.options.stopTimeoutMs);
    await this.#outcome(this.#start(id, 'stop', request).done, id, 'stop');
  }

  /** Stops the machine's process and starts it again, as one operation. */
  async restart(id: string, asked: StopSettings): Promise<void> {
    await this.#busy.whenFree(id);
    const machine = this.get(id);
    if (machine.state !== 'started') {
      throw flydError(
        'FLYD_ERR_PRECONDITION',
        `machine ${id} is ${machine.state}; only a started machine restarts`,
      );
    }
    this.#restarts.reset(id);
    const request: StopRequest = stopSettings(asked, machine.config, this.options.stopTimeoutMs);
    await this.#outcome(this.#start(id, 'restart', request).done, id, 'restart');
  }

  /**
   * Replaces the machine's config as a new version (a new instance id); a running machine is
   * stopped and started on the new config, in one FSM run.
   */
  async update(id: string, config: CreateRequest['config']): Promise<MachineRecord> {
    const release = await this.#holdImage(config);
    try {
      return await this.#update(id, config);
    } finally {
      release();
    }
  }

  async #update(id: string, config: CreateRequest['config']): Promise<MachineRecord> {
    this.#checkRunnable(config); // a config that cannot run is refused up front
    await this.#busy.whenFree(id);
    const machine = this.get(id);
    if (machine.state === 'destroyed' || machine.state === 'destroying') {
      throw flydError(
        'FLYD_ERR_PRECONDITION',
        `machine ${id} is ${machine.state}; it cannot be updated`,
      );
    }
    this.volumes.checkMounts(config, machine.app, id);
    const volumeOf = (of: MachineConfig) => mountOf(of)?.volume;
    if (volumeOf(config) !== volumeOf(machine.config)) {
      throw flydError(
        'FLYD_ERR_BAD_CONFIG',
        'config.mounts: an update keeps the volume the machine was created with',
      );
    }
    this.#restarts.cancel(id);
    // The process being stopped runs the old config: its stop_config says how to stop it.
    const stop = stopSettings({}, machine.config, this.options.stopTimeoutMs);
    await this.#outcome(
      this.#start(id, 'update', {
        config,
        signal: stop.signal,
        timeoutMs: stop.timeoutMs,
        version: newVersion(),
      } satisfies UpdateRequest).done,
      id,
      'update',
    );
    return this.get(id);
  }

  /** Cordons (no traffic, still running) or uncordons a machine (an FSM); answers once published. */
  async cordon(id: string, cordoned: boolean): Promise<void> {
    await this.#busy.whenFree(id);
    this.get(id);
    const action = cordoned ? 'cordon' : 'uncordon';
    await this.#outcome(this.#start(id, action, {}).done, id, action);
  }

  /** Sets (or, with `undefined`, deletes) one metadata key; answers once published. */
  async setMetadata(
    id: string,
    key: string,
    value: string | undefined,
  ): Promise<Record<string, string>> {
    const machine = this.get(id);
    const metadata = { ...((machine.config.metadata ?? {}) as Record<string, string>) };
    if (value === undefined) delete metadata[key];
    else metadata[key] = value;
    this.store.replaceConfig(id, { ...machine.config, metadata });
    await this.publisher.machineChanged(id);
    return metadata;
  }

  /** Sends a signal to the machine's processes; its state is what the process does next. */
  signal(id: string, signal: NodeJS.Signals): void {
    const machine = this.get(id);
    if (!this.runtime.signal(id, signal)) {
      throw flydError(
        'FLYD_ERR_PRECONDITION',
        `machine ${id} is ${machine.state}: no process to signal`,
      );
    }
  }

  async destroy(id: string, kill: boolean): Promise<void> {
    await this.#busy.whenFree(id);
    const machine = this.get(id);
    this.#restarts.cancel(id);
    if (machine.state === 'destroyed') return;
    if ((machine.state === 'started' || machine.state === 'starting') && !kill) {
      throw flydError(
        'FLYD_ERR_PRECONDITION',
        `machine ${id} is ${machine.state}: stop it first, or destroy with kill=true`,
      );
    }
    const stop = stopSettings({}, machine.config, this.options.stopTimeoutMs);
    const request: DestroyRequest = { kill, ...stop };
    await this.#outcome(this.#start(id, 'destroy', request).done, id, 'destroy');
  }

  /**
   * Moves the machine (and its volume) to another worker of the region, keeping its id: one FSM
   * run, `migrate` (see migrate.ts). Answers once the target owns it.
   */
  async migrate(id: string, request: MigrateRequest): Promise<void> {
    await this.#busy.whenFree(id);
    const machine = this.get(id);
    if (request.target_host_id === this.options.hostId) {
      throw flydError('FLYD_ERR_MIGRATE', `machine ${id} is on ${request.target_host_id} already`);
    }
    if (!['created', 'started', 'stopped'].includes(machine.state)) {
      throw flydError(
        'FLYD_ERR_PRECONDITION',
        `machine ${id} is ${machine.state}; only a created, started or stopped machine migrates`,
      );
    }
    checkMigratable(id, machine.config);
    this.#restarts.cancel(id);
    await this.#outcome(this.#start(id, 'migrate', request).done, id, 'migrate');
  }

  /**
   * What a config needs of this worker to run, checked before anything is recorded: its image
   * (and command), files that can be written over that image, a mount path the image leaves
   * free, and stop settings flyd can honour. Each refusal is 400 FLYD_ERR_BAD_CONFIG naming the
   * field. The config's shape was checked by the route's schema.
   */
  #checkRunnable(config: MachineConfig): ReturnType<typeof resolveImage> {
    const image = resolveImage(this.options, config);
    checkFiles(config, image.dir);
    checkMountOverImage(config, image.dir);
    stopConfigOf(config);
    return image;
  }

  /**
   * Resolves once the machine is in `state` and the operation that took it there is over, so
   * the caller's next call is not refused as a conflict with a run finishing its last step.
   */
  async wait(
    id: string,
    states: MachineState[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<MachineRecord> {
    const deadline = Date.now() + timeoutMs;
    const reached = await this.#reach(id, states, timeoutMs, signal);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    await Promise.race([
      this.engine.settled(id),
      new Promise((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        onAbort = () => resolve(undefined); // reached already: answer it, do not wait the run out
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    return this.store.get(id) ?? reached;
  }

  /** The machine once in one of `states`; rejects at `timeoutMs`, or with `signal`'s reason. */
  #reach(
    id: string,
    states: MachineState[],
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<MachineRecord> {
    const current = this.get(id);
    if (states.includes(current.state)) return Promise.resolve(current);
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const listener = (machine: MachineRecord) => {
        if (machine.id !== id || !states.includes(machine.state)) return;
        cleanup();
        resolve(machine);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          flydError(
            'FLYD_ERR_TIMEOUT',
            `machine ${id} did not reach ${states.join(' or ')} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const aborted = () => {
        cleanup();
        reject(signal?.reason);
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.#changes.off('state', listener);
        signal?.removeEventListener('abort', aborted);
      };
      this.#changes.on('state', listener);
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }

  /** A machine process exited: unless flyd asked for it, the machine is now stopped. */
  exited(id: string, exit: ExitInfo): void {
    const machine = this.store.get(id);
    if (exit.requested || !machine || (machine.state !== 'started' && machine.state !== 'starting'))
      return;
    this.options.logger.warn(
      { machine: id, code: exit.code, signal: exit.signal },
      'machine exited',
    );
    const restarts = this.#restarts.count(id);
    const next = afterExit(machine.config, exit, restarts);
    // `restart_count` (Fly's field) is kept with the exit, so a flyd that dies while the restart
    // waits out its backoff knows at boot how many retries the policy has left; `restarting`
    // (Fly's too) says whether the policy restarts it.
    const exitEvent = {
      exit_event: {
        exit_code: exit.code,
        signal: exit.signal,
        oom_killed: exit.oomKilled,
        requested_stop: false,
        restarting: next.action === 'restart',
      },
      restart_count: restarts,
    };
    this.#setState(
      id,
      'stopped',
      { type: 'exit', source: 'flyd', request: exitEvent },
      { pid: null, stop_reason: 'exited' },
    );
    this.#restarts.follow(id, next, restarts);
  }

  /** Removes the roots of machines this worker does not have (before boot: none is starting). */
  async sweepRoots(): Promise<string[]> {
    const known = this.store
      .list()
      .filter((machine) => machine.state !== 'destroyed')
      .map((machine) => machine.id);
    return this.#dirs.sweep(new Set(known));
  }

  /** Adopts, kills, resumes and restarts what a previous flyd left (see boot.ts). */
  boot(): void {
    bootMachines({
      store: this.store,
      engine: this.engine,
      runtime: this.runtime,
      restarts: this.#restarts,
      dirs: this.#dirs,
      hostId: this.options.hostId,
      logger: this.options.logger,
      start: (...run) => this.#start(...run),
      exited: (id, exit) => this.exited(id, exit),
    });
  }

  /**
   * flyd exits. By default its machines run on (boot adopts them); with `stopMachines`
   * (`--stop-machines-on-exit`) every running machine is stopped and recorded so, and boot
   * starts them again. The roots of machines not left running are unmounted. Answers the ids of
   * the machines left running (their volumes stay mounted too).
   */
  async shutdown(stopMachines: boolean): Promise<Set<string>> {
    this.#restarts.stopAll();
    const left = new Set(stopMachines ? [] : this.runtime.runningIds());
    if (stopMachines) await this.#stopAll();
    else this.runtime.release();
    await this.#dirs.unmountIdle((id) => left.has(id));
    await this.runtime.network?.releaseAll(); // the left running keep theirs through their process
    return left;
  }

  async #stopAll(): Promise<void> {
    await Promise.all(
      this.runtime.runningIds().map(async (id) => {
        await this.runtime.stop(id, 'SIGTERM', this.options.stopTimeoutMs);
        this.#setState(
          id,
          'stopped',
          { type: 'exit', source: 'flyd' },
          { pid: null, stop_reason: 'flyd-shutdown' },
        );
      }),
    );
  }

  /** An operation's failure as the API tells it: our errors as they are, others as FLYD_ERR_FAILED. */
  async #outcome<T>(running: Promise<T>, id: string, action: string): Promise<T> {
    try {
      return await running;
    } catch (error) {
      if (error instanceof HttpError) throw error;
      // A step's answer (a refusal, a launch failure) rides as its error's cause.
      if (error instanceof Error && error.cause instanceof HttpError) throw error.cause;
      const reason = hidePaths((error as Error).message, this.#dirs.hidden(id));
      const code = error instanceof UnrecoverableError ? error.code : 'FLYD_ERR_FAILED';
      throw flydError(code, `${action} of machine ${id} failed: ${reason}`);
    }
  }

  #start(id: string, action: string, request: unknown): RunHandle {
    try {
      return this.engine.start(id, action, request);
    } catch (error) {
      if (error instanceof RunConflictError) throw flydError(error.code, error.message);
      throw error;
    }
  }

  #setState(
    id: string,
    state: MachineState,
    event: { type: string; source: string; request?: unknown },
    extra: Partial<Pick<MachineRecord, 'pid' | 'port' | 'stop_reason'>> = {},
  ): MachineRecord {
    const machine = this.store.update(id, { state, ...extra });
    this.store.addEvent(id, { ...event, status: state });
    void this.publisher.machineChanged(id);
    // The volume's usage in corrosion is as of its last change: a machine that stopped is one.
    const volumeId = mountOf(machine.config)?.volume;
    if (state === 'stopped' && volumeId) void this.volumes.republish(volumeId);
    this.#changes.emit('state', machine);
    return machine;
  }

  /**
   * A state change that ends an operation: the API answers only after the row reached corrosion
   * (or the attempt failed and a retry is queued), so callers read their own writes through
   * flaps and the proxy.
   */
  async #record(
    id: string,
    state: MachineState,
    event: { type: string; source: string; request?: unknown },
    extra: Partial<Pick<MachineRecord, 'pid' | 'port' | 'stop_reason'>> = {},
  ): Promise<void> {
    this.#setState(id, state, event, extra);
    await this.publisher.flush();
  }

  /**
   * A launch that failed (the command cannot run, a file cannot be written) leaves the machine
   * stopped, saying why: its stop reason and an exit event whose request holds the error, as the
   * caller of start and every reader of its events see it (no host path). A machine that a
   * create never got to start is stopped too, not left `created`.
   */
  async #launchFailed(id: string, error: Error): Promise<void> {
    const state = this.store.get(id)?.state;
    if (state !== 'starting' && state !== 'created' && state !== 'stopped') return;
    const hidden = hidePaths(error.message, this.#dirs.hidden(id));
    const reason = hidden.startsWith('launch failed') ? hidden : `launch failed: ${hidden}`;
    await this.#record(
      id,
      'stopped',
      { type: 'exit', source: 'flyd', request: { error: reason } },
      { pid: null, stop_reason: reason },
    );
  }

  /** The processes of a started machine's process group. */
  processes(id: string): MachineProcess[] {
    const machine = this.get(id);
    if (machine.pid === null || !this.runtime.isRunning(id)) {
      throw flydError('FLYD_ERR_PRECONDITION', `machine ${id} is ${machine.state}: no processes`);
    }
    return machineProcesses(machine.pid);
  }

  /** Runs a command in a started machine's environment and directory. */
  async exec(id: string, command: string[], timeoutMs: number): Promise<ExecResult> {
    const machine = this.get(id);
    if (machine.state !== 'started') {
      throw flydError(
        'FLYD_ERR_PRECONDITION',
        `machine ${id} is ${machine.state}; exec needs a started machine`,
      );
    }
    const secrets = await this.options.secrets.env(machine.app);
    const where = { cwd: this.root(id), env: this.env(id, undefined, secrets) };
    try {
      return await execInMachine(this.runtime.inMachine(id, command, where), {
        ...where,
        timeoutMs,
      });
    } catch (error) {
      // The command could not run (not found, not executable): the caller's request, not a config.
      const code = (error as NodeJS.ErrnoException).code ?? 'failed';
      throw flydError('FLYD_ERR_BAD_REQUEST', `exec: ${command[0]} cannot run (${code})`);
    }
  }

  /** The machine's root (see root.ts): its working directory and HOME. */
  root(id: string): string {
    return this.#dirs.root(id);
  }

  /** The environment a machine's processes get, its own and `exec`'s (see environment.ts). */
  env(
    id: string,
    port = this.get(id).port,
    secrets: Record<string, string> = {},
  ): Record<string, string> {
    const machine = this.get(id);
    let imageEnv: Record<string, string> = {};
    try {
      imageEnv = resolveImage(this.options, machine.config).env;
    } catch {
      // The image cannot be read: launch says why.
    }
    return machineEnv(machine, {
      root: this.root(id),
      port,
      hostId: this.options.hostId,
      imageEnv,
      mountEnv: this.volumes.mountEnv(machine.config),
      secrets,
    });
  }

  #launch(id: string): Promise<void> {
    return launchMachine(id, {
      store: this.store,
      runtime: this.runtime,
      volumes: this.volumes,
      dirs: this.#dirs,
      images: this.options,
      listenWaitMs: this.options.listenWaitMs,
      pidsMax: this.options.machinePidsMax,
      logger: this.options.logger,
      holdImage: (config) => this.#holdImage(config),
      env: (machineId, port, secrets) => this.env(machineId, port, secrets),
      secrets: (app) => this.options.secrets.env(app),
      setState: (...change) => void this.#setState(...change),
      recordStarted: (machineId) =>
        this.#record(machineId, 'started', { type: 'start', source: 'flyd' }),
    });
  }
}

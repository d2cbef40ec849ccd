import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { HttpError, type Logger } from '@fleet/service';
import type { AppSecrets } from './app-secrets.js';
import type { HostCapacity } from './capacity.js';
import { flydError } from './errors.js';
import { AbortStep, type FsmEngine, RunConflictError, type RunHandle } from './fsm/engine.js';
import type { ImageCache } from './image-cache.js';
import { imageDigest, resolveImage } from './images.js';
import { type HostPaths, hidePaths, launchError } from './launch-errors.js';
import {
  type CreateRequest,
  type DestroyRequest,
  defineMachineActions,
  type MachineSteps,
  newVersion,
  type StopRequest,
  type UpdateRequest,
} from './machine-actions.js';
import {
  type ExecResult,
  execInMachine,
  type MachineProcess,
  machineProcesses,
} from './machine-exec.js';
import { checkFiles, checkMountOverImage, prepareRoot } from './machine-root.js';
import {
  guestOf,
  type MachineConfig,
  type MachineEvent,
  type MachineRecord,
  type MachineState,
  type MachineStore,
} from './machine-store.js';
import { checkMigratable, defineMigrateAction, type MigrateRequest } from './migrate.js';
import type { PeerClient } from './peer-client.js';
import { freePort, waitForListener } from './ports.js';
import type { Publisher } from './publisher.js';
import { afterExit } from './restart-policy.js';
import { type ExitInfo, killLeftovers, type ProcessRuntime } from './runtime.js';
import { type StopSettings, stopConfigOf, stopSettings } from './stop-config.js';
import { mountOf } from './volume-mounts.js';
import { rowWaitMs, type VolumeService } from './volumes.js';

export type { CreateRequest, StopRequest };

export interface MachineServiceOptions {
  dataDir: string;
  imagesDir: string;
  /** Images pulled from flaps by digest (`name@sha256:...` configs). */
  imageCache: ImageCache;
  /** The app's secrets, opened at each launch and exec (app-secrets.ts). */
  secrets: AppSecrets;
  region: string;
  hostId: string;
  stopTimeoutMs: number;
  /** How long a starting machine may take to listen on its service port. */
  listenWaitMs: number;
  /** What this worker offers (`--cpus`, `--memory-mb`): a create that does not fit is refused. */
  capacity: HostCapacity;
  /**
   * How long an operation on a machine busy with another waits for it before 409 (`--busy-wait-ms`),
   * and how many may wait at once for one machine (`--busy-waiters-max`).
   */
  busyWaitMs: number;
  busyWaitersMax: number;
  logger: Logger;
}

/**
 * The machine operations of this worker. Each runs as an FSM (create, start, stop, destroy);
 * every state change is recorded locally, logged as an event and published to corrosion.
 */
export class MachineService {
  readonly #changes = new EventEmitter();
  /** Restarts the restart policy made since the machine was last started by a caller. */
  readonly #restarts = new Map<string, number>();
  readonly #restartTimers = new Map<string, NodeJS.Timeout>();
  /** Operations waiting for their busy machine, by machine (each bounded by busyWaitMs). */
  readonly #waiting = new Map<string, number>();

  constructor(
    private readonly store: MachineStore,
    private readonly engine: FsmEngine,
    private readonly runtime: ProcessRuntime,
    private readonly publisher: Publisher,
    private readonly options: MachineServiceOptions,
    private readonly volumes: VolumeService,
    peer: PeerClient,
  ) {
    this.#changes.setMaxListeners(0); // one per long-poll `wait`, each bounded by its timeout
    const steps: MachineSteps = {
      store,
      runtime,
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
    await this.#whenFree(id);
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
    this.#restarts.delete(id);
    if (machine.state !== 'started')
      await this.#outcome(this.#start(id, 'start', {}).done, id, 'start');
    return { previous_state: machine.state };
  }

  /** Pauses a started machine (SIGSTOP to its process group); `start` resumes it. */
  async suspend(id: string): Promise<void> {
    await this.#whenFree(id);
    const machine = this.get(id);
    if (machine.state === 'suspended') return;
    if (machine.state !== 'started') {
      throw flydError(
        'FLYD_ERR_PRECONDITION',
        `machine ${id} is ${machine.state}; only a started machine suspends`,
      );
    }
    this.#cancelRestart(id);
    await this.#outcome(this.#start(id, 'suspend', {}).done, id, 'suspend');
  }

  /** Stops the machine with the caller's signal and grace period, else its stop_config's. */
  async stop(id: string, asked: StopSettings): Promise<void> {
    await this.#whenFree(id);
    const machine = this.get(id);
    this.#cancelRestart(id);
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
    await this.#whenFree(id);
    const machine = this.get(id);
    if (machine.state !== 'started') {
      throw flydError(
        'FLYD_ERR_PRECONDITION',
        `machine ${id} is ${machine.state}; only a started machine restarts`,
      );
    }
    this.#restarts.delete(id);
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
    await this.#whenFree(id);
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
    this.#cancelRestart(id);
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
    await this.#whenFree(id);
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
    await this.#whenFree(id);
    const machine = this.get(id);
    this.#cancelRestart(id);
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
    await this.#whenFree(id);
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
    this.#cancelRestart(id);
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
   * Waits until no run holds the machine, so that an operation arriving while another finishes
   * (a stop right after a create's launch, a start while a stop records) runs after it instead
   * of failing. Bounded: at most `busyWaitMs`, and at most `busyWaitersMax` callers wait for one
   * machine; past either, 409 FLYD_ERR_CONFLICT names the operation in the way. The caller checks
   * the machine's state after this returns (it may have changed while waiting), and starts its
   * run in the same synchronous step.
   */
  async #whenFree(id: string): Promise<void> {
    if (!this.engine.isBusy(id)) return;
    const { busyWaitMs, busyWaitersMax } = this.options;
    const waiting = this.#waiting.get(id) ?? 0;
    const busy = () =>
      flydError('FLYD_ERR_CONFLICT', `machine ${id} is ${this.engine.busyWith(id)}`);
    if (waiting >= busyWaitersMax) {
      const refusal = busy();
      refusal.message += ` (${waiting} operations wait for it already; --busy-waiters-max)`;
      throw refusal;
    }
    this.#waiting.set(id, waiting + 1);
    const deadline = Date.now() + busyWaitMs;
    try {
      while (this.engine.isBusy(id)) {
        const leftMs = deadline - Date.now();
        if (leftMs <= 0) {
          const refusal = busy();
          refusal.message += ` (waited ${busyWaitMs} ms for it; --busy-wait-ms)`;
          throw refusal;
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          this.engine.settled(id),
          new Promise((resolve) => {
            timer = setTimeout(resolve, leftMs);
          }),
        ]);
        clearTimeout(timer);
      }
    } finally {
      const left = (this.#waiting.get(id) ?? 1) - 1;
      if (left > 0) this.#waiting.set(id, left);
      else this.#waiting.delete(id);
    }
  }

  /**
   * Resolves once the machine is in `state` and the operation that took it there is over, so
   * the caller's next call is not refused as a conflict with a run finishing its last step.
   */
  async wait(id: string, states: MachineState[], timeoutMs: number): Promise<MachineRecord> {
    const deadline = Date.now() + timeoutMs;
    const reached = await this.#reach(id, states, timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.engine.settled(id),
      new Promise((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      }),
    ]);
    clearTimeout(timer);
    return this.store.get(id) ?? reached;
  }

  #reach(id: string, states: MachineState[], timeoutMs: number): Promise<MachineRecord> {
    const current = this.get(id);
    if (states.includes(current.state)) return Promise.resolve(current);
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
      const cleanup = () => {
        clearTimeout(timer);
        this.#changes.off('state', listener);
      };
      this.#changes.on('state', listener);
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
    const restarts = this.#restarts.get(id) ?? 0;
    // `restart_count` (Fly's field) is kept with the exit, so a flyd that dies while the restart
    // waits out its backoff knows at boot how many retries the policy has left.
    const exitEvent = {
      exit_event: {
        exit_code: exit.code,
        signal: exit.signal,
        oom_killed: exit.oomKilled,
        requested_stop: false,
      },
      restart_count: restarts,
    };
    this.#setState(
      id,
      'stopped',
      { type: 'exit', source: 'flyd', request: exitEvent },
      { pid: null, stop_reason: 'exited' },
    );
    this.#afterExit(id, machine.config, exit, restarts);
  }

  /** What the restart policy does after an exit: destroy, or restart after its backoff. */
  #afterExit(id: string, config: MachineConfig, exit: ExitInfo, restarts: number): void {
    const next = afterExit(config, exit, restarts);
    if (next.action === 'destroy') {
      this.#start(id, 'destroy', { kill: true }).done.catch(() => undefined);
    } else if (next.action === 'restart') {
      this.#restarts.set(id, restarts + 1);
      const timer = setTimeout(() => {
        this.#restartTimers.delete(id);
        if (this.store.get(id)?.state === 'stopped' && !this.engine.isBusy(id)) {
          this.#start(id, 'start', { source: 'restart-policy' }).done.catch(() => undefined);
        }
      }, next.delayMs);
      this.#restartTimers.set(id, timer);
    }
  }

  /**
   * At boot, a machine that stopped because its process exited gets what its policy said then:
   * the restart (or auto-destroy) a crashed flyd's backoff timer held is not lost. The exit and
   * the retries spent so far are read back from its last exit event.
   */
  #resumeRestartPolicy(machine: MachineRecord): void {
    const exitEvent = this.store
      .events(machine.id)
      .find((event) => event.type === 'exit' && isExitRequest(event.request));
    if (!exitEvent) return;
    const request = exitEvent.request as ExitRequest;
    const exit: ExitInfo = {
      code: request.exit_event.exit_code,
      signal: request.exit_event.signal,
      oomKilled: request.exit_event.oom_killed === true,
      requested: false,
    };
    this.#afterExit(machine.id, machine.config, exit, request.restart_count ?? 0);
  }

  /**
   * At boot: adopt the machines whose process outlived the last flyd, kill what else a previous
   * flyd left, resume unfinished runs, and give the policy the machines whose process is gone.
   */
  boot(): void {
    const machines = this.store.list();
    const adopted = new Set(
      machines
        .filter(
          (machine) =>
            machine.state === 'started' &&
            machine.pid !== null &&
            this.runtime.adopt(
              machine.id,
              this.#stateDir(machine.id),
              machine.pid,
              this.options.hostId,
            ),
        )
        .map((machine) => machine.id),
    );
    if (adopted.size > 0)
      this.options.logger.info({ machines: [...adopted] }, 'adopted running machines');
    const owned = new Set(
      machines
        .filter((machine) => machine.state !== 'destroyed' && !adopted.has(machine.id))
        .map((machine) => machine.id),
    );
    const killed = killLeftovers(owned, this.options.hostId);
    if (killed.length > 0)
      this.options.logger.warn(
        { pids: killed },
        'killed machine processes a previous flyd left running',
      );
    for (const run of this.engine.resumeAll()) {
      // A resumed run past its launch step cannot see that the leftover kill above took the
      // process it launched: once the run is over, a machine still recorded started is relaunched.
      const relaunch = () => {
        const machine = this.store.get(run.machineId);
        if (machine?.state !== 'started' || this.runtime.isRunning(machine.id)) return;
        if (this.engine.isBusy(machine.id)) return;
        this.#start(machine.id, 'start', {}).done.catch(() => undefined);
      };
      void run.done.then(relaunch, relaunch);
    }
    for (const machine of machines) {
      if (adopted.has(machine.id) || this.engine.isBusy(machine.id)) continue;
      if (machine.state === 'suspended' || machine.state === 'suspending') {
        // A paused process is not adopted (its stop reason would be lost): it is ended above.
        this.store.update(machine.id, { state: 'stopped', pid: null, stop_reason: 'flyd-restart' });
        continue;
      }
      if (machine.state === 'stopped' && machine.stop_reason === 'exited') {
        this.#resumeRestartPolicy(machine);
        continue;
      }
      if (machine.state === 'started') {
        // Its process ended while flyd was away, with an exit code nobody saw: the policy decides.
        this.exited(machine.id, { code: null, signal: null, oomKilled: false, requested: false });
        continue;
      }
      // A launch flyd left half-way, or a machine a `--stop-machines-on-exit` shutdown stopped.
      const stoppedByShutdown =
        machine.state === 'stopped' && machine.stop_reason === 'flyd-shutdown';
      if (machine.state === 'starting' || stoppedByShutdown) {
        if (machine.state === 'starting')
          this.store.update(machine.id, { state: 'stopped', pid: null });
        this.#start(machine.id, 'start', {}).done.catch(() => undefined);
      }
    }
  }

  /**
   * flyd exits. By default its machines run on (boot adopts them); with `stopMachines`
   * (`--stop-machines-on-exit`) every running machine is stopped and recorded so, and boot
   * starts them again.
   */
  async shutdown(stopMachines: boolean): Promise<void> {
    for (const timer of this.#restartTimers.values()) clearTimeout(timer);
    this.#restartTimers.clear();
    if (!stopMachines) {
      this.runtime.release();
      return;
    }
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

  /** A caller's stop or destroy overrides a restart the policy had scheduled. */
  #cancelRestart(id: string): void {
    clearTimeout(this.#restartTimers.get(id));
    this.#restartTimers.delete(id);
    this.#restarts.delete(id);
  }

  /** An operation's failure as the API tells it: our errors as they are, others as FLYD_ERR_FAILED. */
  async #outcome<T>(running: Promise<T>, id: string, action: string): Promise<T> {
    try {
      return await running;
    } catch (error) {
      if (error instanceof HttpError) throw error;
      // A step's answer (a refusal, a launch failure) rides as its error's cause.
      if (error instanceof Error && error.cause instanceof HttpError) throw error.cause;
      const reason = hidePaths((error as Error).message, this.#paths(id));
      throw flydError('FLYD_ERR_FAILED', `${action} of machine ${id} failed: ${reason}`);
    }
  }

  /** This worker's paths for machine `id`, which no answer or event may show. */
  #paths(id: string): HostPaths {
    return {
      root: this.root(id),
      dataDir: this.options.dataDir,
      imagesDir: this.options.imagesDir,
    };
  }

  #start(id: string, action: string, request: unknown): RunHandle {
    try {
      return this.engine.start(id, action, request);
    } catch (error) {
      if (error instanceof RunConflictError) throw flydError('FLYD_ERR_CONFLICT', error.message);
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
    const hidden = hidePaths(error.message, this.#paths(id));
    const reason = hidden.startsWith('launch failed') ? hidden : `launch failed: ${hidden}`;
    await this.#record(
      id,
      'stopped',
      { type: 'exit', source: 'flyd', request: { error: reason } },
      { pid: null, stop_reason: reason },
    );
  }

  /** Starts the machine's process (idempotent: a running machine is left as it is). */
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

  /** The machine's own folder: its root, its output files and its process record. */
  #stateDir(id: string): string {
    return join(this.options.dataDir, 'machines', id);
  }

  /** The machine's root (see machine-root.ts): its working directory and HOME. */
  root(id: string): string {
    return join(this.options.dataDir, 'machines', id, 'root');
  }

  /** The environment a machine's processes get (its own and `exec`'s): clean, plus Fly's. */
  /** The environment image.json gives (none when the image cannot be read: launch says why). */
  #imageEnv(config: MachineConfig): Record<string, string> {
    try {
      return resolveImage(this.options, config).env;
    } catch {
      return {};
    }
  }

  env(
    id: string,
    port = this.get(id).port,
    secrets: Record<string, string> = {},
  ): Record<string, string> {
    const machine = this.get(id);
    return {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: this.root(id),
      LANG: process.env.LANG ?? 'C.UTF-8',
      ...this.#imageEnv(machine.config),
      ...(machine.config.env ?? {}),
      ...secrets, // over the config's env, as on Fly; under Fly's own variables
      ...this.volumes.mountEnv(machine.config),
      ...(port === null ? {} : { PORT: String(port) }),
      FLY_APP_NAME: machine.app,
      FLY_MACHINE_ID: id,
      FLY_REGION: machine.region,
      FLY_IMAGE_REF: machine.image_ref,
      FLY_PRIVATE_IP: '127.0.0.1',
      FLEET_HOST_ID: this.options.hostId,
    };
  }

  /**
   * Launches the machine's process. A failure is an AbortStep when the config is its cause (not
   * retried) and a retried error otherwise; its cause is the API's answer, 422
   * FLYD_ERR_LAUNCH_FAILED with the reason and no host path (see launch-errors.ts).
   */
  async #launch(id: string): Promise<void> {
    try {
      await this.#launchProcess(id);
    } catch (error) {
      throw launchError(error, this.#paths(id));
    }
  }

  async #launchProcess(id: string): Promise<void> {
    if (this.runtime.isRunning(id)) return;
    const machine = this.get(id);
    // Pulled again if its folder went (the cache never evicts an image a machine here uses).
    (await this.#holdImage(machine.config))();
    let image: ReturnType<typeof resolveImage>;
    try {
      image = resolveImage(this.options, machine.config);
    } catch (error) {
      throw new AbortStep((error as Error).message, { cause: error }); // retrying cannot fix a config
    }
    const secrets = await this.options.secrets.env(machine.app);
    const port = machine.port ?? (await freePort());
    prepareRoot(this.root(id), image, machine.config);
    this.volumes.link(this.root(id), machine.config);
    this.#setState(id, 'starting', { type: 'start', source: 'user' }, { port, stop_reason: null });
    const pid = await this.runtime.start({
      machineId: id,
      image,
      dir: this.root(id),
      stateDir: this.#stateDir(id),
      env: this.env(id, port, secrets),
      limits: guestOf(machine.config),
    });
    this.store.update(id, { pid });
    // A process machine is `started` once its service port takes connections (bounded), so the
    // proxy does not route to a machine that cannot answer yet.
    if ((machine.config.services ?? []).length > 0) {
      const listening = await waitForListener(port, this.options.listenWaitMs, () =>
        this.runtime.isRunning(id),
      );
      if (!this.runtime.isRunning(id)) return; // it exited while starting: `exited` recorded it
      if (!listening)
        this.options.logger.warn(
          { machine: id, port },
          'machine does not listen on its service port yet',
        );
    }
    await this.#record(id, 'started', { type: 'start', source: 'flyd' });
  }
}

/** The `request` of an exit event, as `exited` records it. */
interface ExitRequest {
  exit_event: {
    exit_code: number | null;
    signal: NodeJS.Signals | null;
    oom_killed?: boolean;
  };
  restart_count?: number;
}

function isExitRequest(request: unknown): request is ExitRequest {
  const exit = (request as Partial<ExitRequest> | undefined)?.exit_event;
  return typeof exit === 'object' && exit !== null && 'exit_code' in exit;
}

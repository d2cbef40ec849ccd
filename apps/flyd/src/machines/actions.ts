import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import { monotonicFactory } from 'ulid';
import { flydError } from '../errors.js';
import { AbortStep, type FsmEngine, type Step } from '../fsm/engine.js';
import type { ProcessRuntime } from '../runtime/process-runtime.js';
import { capacityShortfall, type HostCapacity } from './capacity.js';
import { type MachineDirs, machineStateDir } from './dirs.js';
import type { MachineConfig, MachineRecord, MachineState, MachineStore } from './machine-store.js';
import { freePort } from './ports.js';

export interface CreateRequest {
  id?: string;
  name?: string;
  app: string;
  region?: string;
  config: MachineConfig;
  skip_launch?: boolean;
  /** The first version's id, chosen when the run starts (runs recorded before: made here). */
  instance_id?: string;
  /** Set by a migrate's source: the machine's row as it last wrote it (see Publisher.awaitRow). */
  migrated_from?: { host_id: string; updated_at: string };
}

/**
 * A new instance id (a machine's version, a ULID as Fly's): monotonic, so a machine's versions
 * sort in the order they were made even within one millisecond.
 */
export const newVersion = monotonicFactory();

/**
 * An update's request. `version` is the new version's id, chosen when the run starts and
 * persisted with it, so every run of the `configure` step (one after a crash included) writes the
 * same version; runs recorded before it was part of the request use their run id (also a ULID,
 * also persisted).
 */
export interface UpdateRequest {
  config: MachineConfig;
  timeoutMs: number;
  signal?: NodeJS.Signals;
  version?: string;
}

/** A destroy's request: `kill` sends SIGKILL, else the signal (the config's stop_config). */
export interface DestroyRequest {
  kill: boolean;
  signal?: NodeJS.Signals;
  timeoutMs?: number;
}

export interface StopRequest {
  signal: NodeJS.Signals;
  timeoutMs: number;
}

type StateEvent = { type: string; source: string; request?: unknown };
type StateExtra = Partial<Pick<MachineRecord, 'pid' | 'port' | 'stop_reason'>>;

/** What the machine FSMs act through (MachineService provides it). */
export interface MachineSteps {
  store: MachineStore;
  runtime: ProcessRuntime;
  dirs: MachineDirs;
  options: { dataDir: string; region: string; stopTimeoutMs: number; capacity: HostCapacity };
  setState(id: string, state: MachineState, event: StateEvent, extra?: StateExtra): void;
  /** A state change that ends an operation: resolves once published. */
  record(id: string, state: MachineState, event: StateEvent, extra?: StateExtra): Promise<void>;
  /** Publishes the machine's row as it is; resolves once published (or a retry is queued). */
  publish(id: string): Promise<void>;
  launch(id: string): Promise<void>;
  launchFailed(id: string, error: Error): Promise<void>;
  /** Attaches the volume the config mounts to the machine (idempotent). */
  attachMounts(id: string, config: MachineConfig): Promise<void>;
  /** Detaches the volumes of a destroyed machine (idempotent). */
  detachMounts(id: string): Promise<void>;
}

/**
 * The machine operations as FSMs: create (reserve, prepare, publish, launch), start, stop,
 * restart and destroy. Every step can run again after a crash without harm.
 */
export function defineMachineActions(engine: FsmEngine, machine: MachineSteps): void {
  const machineDir = (id: string) => machineStateDir(machine.options.dataDir, id);
  // A run that failed in its launch step records why on the machine; other steps' failures are
  // the run's own (its history keeps them), not the machine's.
  const launchFailed = ({ machineId }: { machineId: string }, error: Error, step: string) =>
    step === 'launch' ? machine.launchFailed(machineId, error) : undefined;
  /**
   * Records the machine if it fits this worker's capacity beside the machines it has. The check
   * and the insert are one synchronous step (no await between them), so two creates in parallel
   * cannot both take the last room.
   */
  const reserve = (request: CreateRequest & { id: string; image_ref: string }, port: number) => {
    if (machine.store.get(request.id)) return; // a reserve that runs again after a crash
    const shortfall = capacityShortfall(
      machine.options.capacity,
      machine.store.list(),
      request.config,
    );
    if (shortfall) {
      // Retrying cannot make room: the run ends aborted and the API answers 412.
      const refusal = flydError('FLYD_ERR_NO_CAPACITY', `no room on this worker: ${shortfall}`);
      throw new AbortStep(refusal.message, { cause: refusal });
    }
    const now = new Date().toISOString();
    machine.store.insert({
      id: request.id,
      app: request.app,
      name: request.name ?? request.id,
      region: request.region ?? machine.options.region,
      instance_id: request.instance_id ?? newVersion(),
      state: 'created',
      config: request.config,
      image_ref: request.image_ref,
      port,
      ip: null,
      pid: null,
      stop_reason: null,
      cordoned: false,
      created_at: now,
      updated_at: now,
    });
  };
  engine.define<CreateRequest & { id: string; image_ref: string }>('create', {
    steps: [
      {
        name: 'reserve',
        run: async ({ request }) => {
          if (!machine.store.get(request.id)) reserve(request, await freePort());
          await machine.attachMounts(request.id, request.config);
        },
      },
      {
        name: 'prepare',
        run: ({ request }) => {
          mkdirSync(machineDir(request.id), { recursive: true });
          writeFileSync(
            join(machineDir(request.id), 'config.json'),
            JSON.stringify(request.config, null, 2),
          );
        },
      },
      {
        // The API answers after this step: the row is in corrosion by then, so a caller can
        // address the machine through flaps at once (read your writes).
        name: 'publish',
        run: async ({ request }) => {
          await machine.record(request.id, 'created', { type: 'launch', source: 'user' });
        },
      },
      {
        name: 'launch',
        run: ({ request }) => (request.skip_launch ? undefined : machine.launch(request.id)),
      },
    ],
    onFailure: launchFailed,
  });
  engine.define('start', {
    steps: [{ name: 'launch', run: ({ machineId }) => machine.launch(machineId) }],
    onFailure: launchFailed,
  });
  const stopSteps: Step<StopRequest>[] = [
    {
      name: 'signal',
      run: async ({ machineId, request }) => {
        if (!machine.runtime.isRunning(machineId)) return;
        machine.setState(machineId, 'stopping', { type: 'stop', source: 'user' });
        await machine.runtime.stop(machineId, request.signal, request.timeoutMs);
      },
    },
    {
      name: 'record',
      run: ({ machineId }) =>
        machine.record(
          machineId,
          'stopped',
          { type: 'exit', source: 'flyd' },
          { pid: null, stop_reason: 'requested' },
        ),
    },
  ];
  engine.define<StopRequest>('stop', { steps: stopSteps });
  engine.define<UpdateRequest>('update', {
    steps: [
      {
        name: 'stop',
        // The step's result (was it running?) is kept, so a resumed update still knows it. Run
        // again after a crash, the process is gone (boot killed it) but the record still tells:
        // a machine this update was stopping, or had stopped, ran when the update began.
        run: async ({ machineId, request }) => {
          const running = machine.runtime.isRunning(machineId);
          const { state, stop_reason } = present(
            machine.store.get(machineId),
            `machine ${machineId}`,
          );
          const wasRunning =
            running ||
            ['started', 'starting', 'stopping'].includes(state) ||
            (state === 'stopped' && stop_reason === 'update');
          if (!wasRunning) return { wasRunning: false };
          if (running) {
            machine.setState(machineId, 'stopping', { type: 'update', source: 'user' });
            await machine.runtime.stop(machineId, request.signal ?? 'SIGTERM', request.timeoutMs);
          }
          machine.setState(
            machineId,
            'stopped',
            { type: 'exit', source: 'flyd' },
            { pid: null, stop_reason: 'update' },
          );
          return { wasRunning: true };
        },
      },
      {
        name: 'configure',
        run: ({ machineId, request, runId }) => {
          const replaced = machine.store.replaceVersion(
            machineId,
            request.config,
            request.version ?? runId,
          );
          // Run again after a crash, the version is there already: only publish it.
          if (replaced === undefined) return machine.publish(machineId);
          return machine.record(
            machineId,
            present(machine.store.get(machineId), `machine ${machineId}`).state,
            {
              type: 'update',
              source: 'user',
            },
          );
        },
      },
      {
        name: 'launch',
        run: ({ machineId, results }) =>
          (results.stop as { wasRunning: boolean }).wasRunning
            ? machine.launch(machineId)
            : undefined,
      },
    ],
    onFailure: launchFailed,
  });
  engine.define<StopRequest>('restart', {
    steps: [...stopSteps, { name: 'launch', run: ({ machineId }) => machine.launch(machineId) }],
    onFailure: launchFailed,
  });
  // Cordon and uncordon: the machine keeps running and takes no traffic (or takes it again). The
  // flag and its event are one store write; a re-run after a crash finds the flag already set.
  for (const [action, cordoned] of [
    ['cordon', true],
    ['uncordon', false],
  ] as const) {
    engine.define(action, {
      steps: [
        {
          name: 'mark',
          run: ({ machineId }) => {
            const current = machine.store.get(machineId);
            if (!current || current.cordoned === cordoned) return;
            machine.store.update(machineId, { cordoned });
            machine.store.addEvent(machineId, {
              type: action,
              status: current.state,
              source: 'user',
            });
          },
        },
        { name: 'publish', run: ({ machineId }) => machine.publish(machineId) },
      ],
    });
  }
  // Suspend is a pause: SIGSTOP to the machine's process group. Its memory stays in the process
  // (nothing is snapshotted); a flyd restart or a stop ends it like any run.
  engine.define('suspend', {
    steps: [
      {
        name: 'pause',
        run: ({ machineId }) => {
          machine.setState(machineId, 'suspending', { type: 'suspend', source: 'user' });
          if (!machine.runtime.signal(machineId, 'SIGSTOP')) {
            throw new AbortStep(`machine ${machineId} has no running process to suspend`);
          }
        },
      },
      {
        name: 'record',
        run: ({ machineId }) =>
          machine.record(machineId, 'suspended', { type: 'suspend', source: 'flyd' }),
      },
    ],
  });
  engine.define('resume', {
    steps: [
      {
        name: 'continue',
        run: ({ machineId }) => {
          if (!machine.runtime.signal(machineId, 'SIGCONT')) {
            throw new AbortStep(`machine ${machineId} has no suspended process to resume`);
          }
        },
      },
      {
        name: 'record',
        run: ({ machineId }) =>
          machine.record(machineId, 'started', { type: 'resume', source: 'user' }),
      },
    ],
  });
  engine.define<DestroyRequest>('destroy', {
    steps: [
      {
        name: 'stop',
        run: async ({ machineId, request }) => {
          machine.setState(machineId, 'destroying', { type: 'destroy', source: 'user' });
          await machine.runtime.stop(
            machineId,
            request.kill ? 'SIGKILL' : (request.signal ?? 'SIGTERM'),
            request.timeoutMs ?? machine.options.stopTimeoutMs,
          );
        },
      },
      {
        name: 'cleanup',
        run: async ({ machineId }) => {
          await machine.dirs.remove(machineId);
          await machine.runtime.forget(machineId);
          return machine.detachMounts(machineId);
        },
      },
      {
        name: 'record',
        run: ({ machineId }) =>
          machine.record(
            machineId,
            'destroyed',
            { type: 'destroy', source: 'flyd' },
            { pid: null, port: null },
          ),
      },
    ],
  });
}

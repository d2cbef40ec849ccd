import type { Logger } from '@fleet/service';
import type { FsmEngine, RunHandle } from '../fsm/engine.js';
import { type ExitInfo, killLeftovers, type ProcessRuntime } from '../runtime/process-runtime.js';
import type { MachineDirs } from './dirs.js';
import type { MachineStore } from './machine-store.js';
import type { RestartScheduler } from './restarts.js';

/** What boot recovery needs of the machine service. */
export interface BootDeps {
  store: MachineStore;
  engine: FsmEngine;
  runtime: ProcessRuntime;
  restarts: RestartScheduler;
  dirs: MachineDirs;
  hostId: string;
  logger: Logger;
  start(id: string, action: string, request: unknown): RunHandle;
  /** Records a process exit nobody saw and gives the machine to its restart policy. */
  exited(id: string, exit: ExitInfo): void;
}

/**
 * At boot: adopt the machines whose process outlived the last flyd, kill what else a previous
 * flyd left, resume unfinished runs, and give the policy the machines whose process is gone.
 */
export function bootMachines(deps: BootDeps): void {
  const { store, engine, runtime, logger } = deps;
  const machines = store.list();
  const adopted = new Set(
    machines
      .filter(
        (machine) =>
          machine.state === 'started' &&
          machine.pid !== null &&
          runtime.adopt(machine.id, deps.dirs.state(machine.id), machine.pid, deps.hostId),
      )
      .map((machine) => machine.id),
  );
  if (adopted.size > 0) logger.info({ machines: [...adopted] }, 'adopted running machines');
  const owned = new Set(
    machines
      .filter((machine) => machine.state !== 'destroyed' && !adopted.has(machine.id))
      .map((machine) => machine.id),
  );
  const killed = killLeftovers(owned, deps.hostId);
  if (killed.length > 0)
    logger.warn({ pids: killed }, 'killed machine processes a previous flyd left running');
  for (const run of engine.resumeAll()) {
    // A resumed run past its launch step cannot see that the leftover kill above took the
    // process it launched: once the run is over, a machine still recorded started is relaunched.
    const relaunch = () => {
      const machine = store.get(run.machineId);
      if (machine?.state !== 'started' || runtime.isRunning(machine.id)) return;
      if (engine.isBusy(machine.id)) return;
      deps.start(machine.id, 'start', {}).done.catch(() => undefined);
    };
    void run.done.then(relaunch, relaunch);
  }
  for (const machine of machines) {
    if (adopted.has(machine.id) || engine.isBusy(machine.id)) continue;
    if (machine.state === 'suspended' || machine.state === 'suspending') {
      // A paused process is not adopted (its stop reason would be lost): it is ended above.
      store.update(machine.id, { state: 'stopped', pid: null, stop_reason: 'flyd-restart' });
      continue;
    }
    if (machine.state === 'stopped' && machine.stop_reason === 'exited') {
      deps.restarts.resume(machine);
      continue;
    }
    if (machine.state === 'started') {
      // Its process ended while flyd was away, with an exit code nobody saw: the policy decides.
      deps.exited(machine.id, { code: null, signal: null, oomKilled: false, requested: false });
      continue;
    }
    // A launch flyd left half-way, or a machine a `--stop-machines-on-exit` shutdown stopped.
    const stoppedByShutdown =
      machine.state === 'stopped' && machine.stop_reason === 'flyd-shutdown';
    if (machine.state === 'starting' || stoppedByShutdown) {
      if (machine.state === 'starting') store.update(machine.id, { state: 'stopped', pid: null });
      deps.start(machine.id, 'start', {}).done.catch(() => undefined);
    }
  }
}

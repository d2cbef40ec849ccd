import { FlydAnswerError, type FlydClient } from '@fleet/flyd-client';
import { checkMachineConfig, MachineConfigError } from '@fleet/machine-config';
import { present } from '@fleet/service/invariant';
import { flydError } from '../errors.js';
import { AbortStep, type FsmEngine } from '../fsm/engine.js';
import type { MachineSteps } from '../machines/actions.js';
import { stopSettings } from '../machines/stop-config.js';
import { mountOf } from '../volumes/mounts.js';
import { type VolumeService, volumeRecordHeader } from '../volumes/service.js';

export interface MigrateRequest {
  /** The target worker's flyd API and host id (flaps reads both from corrosion's `hosts`). */
  target_url: string;
  target_host_id: string;
}

/**
 * A migrate recreates the machine on the target with a create, which checks its config against
 * the schema; a config stored before the schema existed would be refused there only after this
 * worker had stopped the machine and sent its volume. Refused here first (412), naming the field.
 */
export function checkMigratable(id: string, config: unknown): void {
  try {
    checkMachineConfig(config);
  } catch (error) {
    if (!(error instanceof MachineConfigError)) throw error;
    throw flydError(
      'FLYD_ERR_MIGRATE',
      `machine ${id} cannot migrate until its config is updated: ${error.message}`,
    );
  }
}

interface Plan {
  wasRunning: boolean;
  volumeId: string | null;
}

export interface MigrateSteps extends MachineSteps {
  volumes: VolumeService;
  peer: FlydClient;
  hostId: string;
  /** Forgets the machine on this worker, without publishing: its row is the target's now. */
  forget(id: string): void;
}

/** Longest wait for the machine to be started on the target, when it ran here. */
const targetStartWaitS = 60;

/**
 * Migrate: move a machine and its volume to another worker of the same region, keeping its id.
 * plan (was it running? which volume?) → stop → send-volume (a tar stream to the target flyd,
 * which writes the volume's corrosion row with its host id) → create-target (the target's flyd
 * creates the machine with the same id and config: its row now carries the target's host id) →
 * release-source (this worker forgets the machine and the volume without publishing, so it
 * never overwrites the target's rows). Every step can run again after a crash.
 */
export function defineMigrateAction(engine: FsmEngine, machine: MigrateSteps): void {
  engine.define<MigrateRequest>('migrate', {
    steps: [
      {
        name: 'plan',
        // From the recorded state, not the process: a flyd that crashed here killed it at boot.
        run: ({ machineId, request }): Plan => {
          if (request.target_host_id === machine.hostId)
            throw new AbortStep(`machine ${machineId} is on ${machine.hostId} already`);
          const record = machine.store.get(machineId);
          if (!record) throw new AbortStep(`machine ${machineId} is not on this worker`);
          const mount = mountOf(record.config);
          return {
            wasRunning: ['started', 'starting', 'stopping'].includes(record.state),
            volumeId: mount?.volume ?? null,
          };
        },
      },
      {
        name: 'stop',
        run: async ({ machineId }) => {
          if (machine.runtime.isRunning(machineId)) {
            machine.setState(machineId, 'stopping', { type: 'migrate', source: 'user' });
            // Fly's migrations stop a machine with its stop_config, as a caller's stop does.
            const stop = stopSettings(
              {},
              present(machine.store.get(machineId), `machine ${machineId}`).config,
              machine.options.stopTimeoutMs,
            );
            await machine.runtime.stop(machineId, stop.signal, stop.timeoutMs);
          }
          await machine.record(
            machineId,
            'stopped',
            { type: 'exit', source: 'flyd' },
            { pid: null, stop_reason: 'migrate' },
          );
        },
      },
      {
        name: 'send-volume',
        run: async ({ request, results }) => {
          const { volumeId } = results.plan as Plan;
          if (volumeId === null) return;
          const record = machine.volumes.get(volumeId);
          const { stream, done } = machine.volumes.export(volumeId);
          // A refused or broken transfer stops tar too (it would wait on a reader forever).
          const stopTar = (error: unknown) => {
            stream.destroy();
            throw error;
          };
          await Promise.all([
            machine.peer
              .call(request.target_url, 'PUT', `/v1/volumes/${volumeId}/import`, undefined, {
                stream,
                headers: {
                  [volumeRecordHeader]: Buffer.from(JSON.stringify(record)).toString('base64url'),
                },
                timeoutMs: 600_000,
              })
              .catch(stopTar),
            done,
          ]);
        },
      },
      {
        name: 'create-target',
        run: async ({ machineId, request, results }) => {
          const { wasRunning } = results.plan as Plan;
          const record = present(machine.store.get(machineId), `machine ${machineId}`);
          const body = {
            id: machineId,
            app: record.app,
            name: record.name,
            region: record.region,
            config: record.config,
            skip_launch: !wasRunning,
            migrated_from: { host_id: machine.hostId, updated_at: record.updated_at },
          };
          try {
            await machine.peer.call(request.target_url, 'POST', '/v1/machines', body);
          } catch (error) {
            // Created by an earlier attempt of this step: go on.
            if (!(error instanceof FlydAnswerError && error.code === 'FLYD_ERR_EXISTS'))
              throw error;
          }
          if (wasRunning) {
            await machine.peer.call(
              request.target_url,
              'GET',
              `/v1/machines/${machineId}/wait?state=started&timeout=${targetStartWaitS}`,
              undefined,
              { timeoutMs: (targetStartWaitS + 5) * 1000 },
            );
          }
        },
      },
      {
        name: 'release-source',
        run: async ({ machineId, results }) => {
          const { volumeId } = results.plan as Plan;
          await machine.dirs.remove(machineId);
          await machine.runtime.forget(machineId);
          if (volumeId !== null) await machine.volumes.release(volumeId);
          machine.forget(machineId);
        },
      },
    ],
    // Before the target has the machine, this worker still does: its volume row is published
    // again (the target may have written it) and a machine that ran is started again.
    onFailure: async ({ machineId, results }, _error, step) => {
      if (step === 'create-target' || step === 'release-source') return;
      const plan = results.plan as Plan | undefined;
      if (plan?.volumeId) await machine.volumes.republish(plan.volumeId);
      if (plan?.wasRunning && machine.store.get(machineId)) await machine.launch(machineId);
    },
  });
}

import type { FlydClient } from '@fleet/flyd-client';
import { guestOf } from '@fleet/machine-config';
import type { FastifyInstance } from 'fastify';
import { flapsError } from '../errors.js';
import { placeMachine } from '../placement.js';
import type { FleetState } from '../state.js';
import { leaseNonce } from './leases.js';

/** The longest a migrate may take: stop, copy the volume, start on the target. */
const migrateTimeoutMs = 15 * 60_000;

/**
 * `POST /v1/apps/{app}/machines/{id}/migrate` (a Fleet extension, not in Fly's API): moves the
 * machine and its volume to another ready worker of its region, keeping its id — `host_id` names
 * one, or placement picks the one with the fewest machines of the app, then the most free
 * memory. Answers with the machine as its new worker has it.
 */
export function migrateRoutes(app: FastifyInstance, state: FleetState, flyd: FlydClient): void {
  app.post<{ Params: { app: string; id: string }; Body: { host_id?: string } | undefined }>(
    '/v1/apps/:app/machines/:id/migrate',
    {
      schema: {
        description:
          'Fleet extension (not in Fly): move the machine and its volume to another ready worker of its region, keeping its id',
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { host_id: { type: 'string', minLength: 1, maxLength: 200 } },
        },
      },
    },
    async (request) => {
      const { app: appName, id } = request.params;
      const machine = await state.machine(id);
      if (!machine || machine.app !== appName || machine.state === 'destroyed')
        throw flapsError(
          'FLAPS_ERR_MACHINE_NOT_FOUND',
          `machine ${id} not found in app ${appName}`,
        );
      const source = await state.worker(machine.host_id);
      if (!source?.flyd_addr)
        throw flapsError(
          'FLAPS_ERR_WORKER_UNREACHABLE',
          `machine ${id}: its worker ${machine.host_id} is unknown`,
        );
      const [hosts, counts] = await Promise.all([
        state.readyWorkers(),
        state.appMachineCounts(appName),
      ]);
      const others = hosts.filter(
        (host) => host.region === machine.region && host.id !== machine.host_id,
      );
      const wanted = request.body?.host_id;
      if (wanted !== undefined && !others.some((host) => host.id === wanted)) {
        throw flapsError(
          'FLAPS_ERR_BAD_REQUEST',
          `host_id ${wanted} is not another ready worker of region ${machine.region}`,
        );
      }
      const { memoryMb } = guestOf(JSON.parse(machine.config) as Record<string, unknown>);
      const target = placeMachine(
        wanted === undefined ? others : others.filter((host) => host.id === wanted),
        { region: machine.region, memoryMb, sameGroup: counts },
      );
      await flyd.call(
        source.flyd_addr,
        'POST',
        `/v1/machines/${id}/migrate`,
        { target_url: target.flyd_addr, target_host_id: target.id },
        { timeoutMs: migrateTimeoutMs, leaseNonce: leaseNonce(request.headers) },
      );
      return flyd.call(target.flyd_addr, 'GET', `/v1/machines/${id}`);
    },
  );
}

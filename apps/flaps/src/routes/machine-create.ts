import type { FlydClient } from '@fleet/flyd-client';
import { guestOf, machineConfigSchema, machineNameSchema } from '@fleet/machine-config';
import type { FastifyInstance } from 'fastify';
import { configValidator, flapsError } from '../errors.js';
import { type PlacementTracker, placeMachine } from '../placement.js';
import type { FleetState } from '../state.js';
import { mountedVolumeHost } from '../volume-placement.js';

interface CreateBody {
  name?: string;
  /** A region expression: `iad`, `iad,dfw`, `lhr,eu`, `any`. */
  region?: string;
  /** Machines with the same placement id spread over workers together (default: the app). */
  placement_id?: string;
  /** Checked against @fleet/machine-config's schema before the handler runs. */
  config: Record<string, unknown>;
  skip_launch?: boolean;
  /** fly-go's `LeaseTTL`: take the new machine's lease at once; its nonce comes back as `nonce`. */
  lease_ttl?: number;
}

/** Bound on the wait for a created machine's row to reach this flaps' corrosion. */
const rowArrivalWaitMs = 10_000;

/** `POST /v1/apps/{app}/machines`: placement on a worker, then the create on its flyd. */
export function machineCreateRoute(
  app: FastifyInstance,
  state: FleetState,
  flyd: FlydClient,
  placements: PlacementTracker,
): void {
  app.post<{ Params: { app: string }; Body: CreateBody }>(
    '/v1/apps/:app/machines',
    {
      schema: {
        body: {
          type: 'object',
          required: ['config'],
          properties: {
            name: machineNameSchema,
            region: { type: 'string', maxLength: 200 },
            placement_id: { type: 'string', maxLength: 200 },
            config: machineConfigSchema,
            skip_launch: { type: 'boolean' },
            lease_ttl: { type: 'integer', minimum: 0, maximum: 3600 },
          },
        },
      },
      // Refused here, before placement: nothing is reserved or sent to a worker.
      validatorCompiler: configValidator,
    },
    async (request) => {
      const { config, region, name, skip_launch } = request.body;
      const placementId = request.body.placement_id ?? request.params.app;
      const { memoryMb } = guestOf(config);
      // A machine that mounts a volume goes to the volume's worker.
      const pinned = await mountedVolumeHost(state, request.params.app, config, region);
      const [hosts, counts] = await Promise.all([
        state.readyWorkers(),
        state.appMachineCounts(request.params.app),
      ]);
      // From here to reserve() nothing awaits: the choice and its reservation are one step.
      const view = placements.view(placementId, hosts, counts);
      const candidates =
        pinned === undefined ? view.hosts : view.hosts.filter((host) => host.id === pinned);
      if (pinned !== undefined && candidates.length === 0)
        throw flapsError(
          'FLAPS_ERR_WORKER_UNREACHABLE',
          `the volume's worker ${pinned} is not ready`,
        );
      const host = placeMachine(candidates, { region, memoryMb, sameGroup: view.sameGroup });
      const done = placements.reserve(placementId, host.id, memoryMb);
      try {
        const created = await flyd.call<{ id: string }>(host.flyd_addr, 'POST', '/v1/machines', {
          app: request.params.app,
          name,
          region: host.region,
          config,
          skip_launch,
        });
        done(true);
        // Read-your-writes: the caller's next call (a wait, a get) looks the machine up in this
        // flaps' corrosion, which a remote worker's row reaches by gossip. Answer once it is here
        // (bounded: past it the machine still exists, and the next calls find it a moment later).
        await state.machineArrived(created.id, rowArrivalWaitMs);
        const leaseTtl = request.body.lease_ttl;
        if (!leaseTtl) return created;
        const lease = await flyd.call<{ data: { nonce: string } }>(
          host.flyd_addr,
          'POST',
          `/v1/machines/${created.id}/lease`,
          { ttl: leaseTtl },
        );
        return { ...created, nonce: lease.data.nonce };
      } catch (error) {
        done(false);
        throw error;
      }
    },
  );
}

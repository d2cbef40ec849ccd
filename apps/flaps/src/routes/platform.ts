import { guestOf, guestSchema } from '@fleet/machine-config';
import type { FastifyInstance } from 'fastify';
import { configValidator, flapsError } from '../errors.js';
import { type PlacementTracker, placeMachine } from '../placement.js';
import type { FleetState } from '../state.js';

/** `/v1/platform/*`: what the fleet offers, and where machines would go. */
export function platformRoutes(
  app: FastifyInstance,
  state: FleetState,
  placements: PlacementTracker,
): void {
  app.get('/v1/platform/regions', async () => ({ regions: await state.regions() }));

  /**
   * A dry run of placement: where `count` machines of `app` (or `placement_id`) with this much
   * memory would go in the region expression, counting placements still in flight. Nothing is
   * reserved.
   */
  app.post<{
    Body: {
      app?: string;
      placement_id?: string;
      region?: string;
      count?: number;
      /** fly-go's `MachineGuest`, checked as a machine config's `guest` is. */
      compute?: Record<string, unknown> | null;
      org_slug?: string;
    };
  }>(
    '/v1/platform/placements',
    {
      schema: {
        body: {
          type: 'object',
          properties: {
            app: { type: 'string' },
            placement_id: { type: 'string', maxLength: 200 },
            region: { type: 'string' },
            // fly-go sends `count: 0` and `compute: null` when the caller set neither.
            count: { type: 'integer', minimum: 0, maximum: 10_000 },
            compute: { ...guestSchema, type: ['object', 'null'] },
            org_slug: { type: 'string' },
          },
        },
      },
      // The machine config's validator: `compute` breaks the rules `config.guest` does, in words.
      validatorCompiler: configValidator,
    },
    async (request) => {
      const { app: appName, region } = request.body ?? {};
      // The app's machine counts are its organization's business: another org's app is missing.
      if (appName !== undefined && !request.principal.operator) {
        const row = await state.app(appName);
        if (row && row.org !== request.principal.org)
          throw flapsError('FLAPS_ERR_APP_NOT_FOUND', `app ${appName} not found`);
      }
      const count = request.body?.count || 1;
      const { memoryMb } = guestOf({ guest: request.body?.compute ?? undefined });
      // Without an app or placement id (fly-go sends neither), a group of its own: a dry run
      // for a new app, whose machines spread only against each other.
      const placementId =
        request.body?.placement_id ?? appName ?? `org:${request.body?.org_slug ?? ''}`;
      const [hosts, counts] = await Promise.all([
        state.readyWorkers(),
        appName ? state.appMachineCounts(appName) : Promise.resolve(new Map<string, number>()),
      ]);
      const view = placements.view(placementId, hosts, counts, { dryRun: true });
      const byHost = new Map<string, { host_id: string; region: string; count: number }>();
      for (let i = 0; i < count; i++) {
        const host = placeMachine(view.hosts, { region, memoryMb, sameGroup: view.sameGroup });
        host.memory_mb_reserved += memoryMb;
        view.sameGroup.set(host.id, (view.sameGroup.get(host.id) ?? 0) + 1);
        const entry = byHost.get(host.id) ?? { host_id: host.id, region: host.region, count: 0 };
        entry.count++;
        byHost.set(host.id, entry);
      }
      const regions = new Map<string, number>();
      for (const entry of byHost.values()) {
        regions.set(entry.region, (regions.get(entry.region) ?? 0) + entry.count);
      }
      return {
        regions: [...regions].map(([code, n]) => ({ region: code, count: n })),
        hosts: [...byHost.values()],
        in_flight: placements.pending(),
      };
    },
  );
}

import swagger from '@fastify/swagger';
import {
  authorizationMatches,
  createHttpServer,
  type Logger,
  type MetricsExport,
} from '@fleet/service';
import type { FastifyInstance } from 'fastify';
import { flapsError } from './errors.js';
import type { FlydClient } from './flyd-client.js';
import { flapsMetrics } from './metrics.js';
import { PlacementTracker } from './placement.js';
import { appRoutes } from './routes/apps.js';
import { machineRoutes } from './routes/machines.js';
import { platformRoutes } from './routes/platform.js';
import type { FleetState } from './state.js';

/** The Machines API: `Authorization: Bearer <token>` (or Fly's `FlyV1 <token>`) on every /v1 call. */
export async function createFlapsServer(
  logger: Logger,
  metrics: MetricsExport,
  token: string,
  state: FleetState,
  flyd: FlydClient,
): Promise<FastifyInstance> {
  const app = createHttpServer({ logger, metrics });
  // The OpenAPI document is generated from the same route schemas that validate requests.
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Fleet Machines API',
        version: '1',
        description: "Fly's /v1 Machines API, served by flaps",
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  const meters = flapsMetrics();
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1/')) return;
    if (!authorizationMatches(request.headers.authorization, token, ['Bearer', 'FlyV1']))
      throw flapsError('FLAPS_ERR_UNAUTHORIZED', 'missing or wrong API token');
  });
  app.addHook('onResponse', async (request, reply) => {
    meters.requests.add(1, {
      route: request.routeOptions.url ?? 'unknown',
      method: request.method,
      status: reply.statusCode,
    });
    if (reply.statusCode === 412) meters.placementFailures.add(1);
  });
  appRoutes(app, state);
  const placements = new PlacementTracker();
  machineRoutes(app, state, flyd, placements);
  platformRoutes(app, state, placements);
  return app;
}

import swagger from '@fastify/swagger';
import type { FlydClient } from '@fleet/flyd-client';
import { createHttpServer, type HttpLimits, type Logger, type MetricsExport } from '@fleet/service';
import type { FastifyInstance } from 'fastify';
import { Authenticator, type Principal } from './auth.js';
import { flapsError } from './errors.js';
import { flyErrorBodies } from './fly-errors.js';
import { documentedResponses } from './fly-shapes.js';
import { imageResolution } from './image-resolution.js';
import { flapsMetrics } from './metrics.js';
import { PlacementTracker } from './placement.js';
import { appRoutes } from './routes/apps.js';
import { certificateRoutes } from './routes/certificates.js';
import { type ImageService, imageRoutes } from './routes/images.js';
import { logRoutes } from './routes/logs.js';
import { machineRoutes } from './routes/machines.js';
import { migrateRoutes } from './routes/migrate.js';
import { platformRoutes } from './routes/platform.js';
import { secretRoutes } from './routes/secrets.js';
import { tokenRoutes } from './routes/tokens.js';
import { volumeRoutes } from './routes/volumes.js';
import type { SecretStore } from './secret-store.js';
import type { FleetState } from './state.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the call is from (set for every /v1 call). */
    principal: Principal;
  }
}

/** The Machines API: `Authorization: Bearer <token>` (or Fly's `FlyV1 <token>`) on every /v1 call. */
export async function createFlapsServer(
  logger: Logger,
  metrics: MetricsExport,
  token: string,
  state: FleetState,
  flyd: FlydClient,
  limits: HttpLimits,
  images: ImageService,
  secrets: SecretStore,
): Promise<FastifyInstance> {
  const app = createHttpServer({ logger, metrics, limits });
  flyErrorBodies(app);
  // The OpenAPI document is generated from the same route schemas that validate requests.
  await app.register(swagger, {
    // Each operation's answer is documented with Fly's shape (fly-shapes.ts). Only the document
    // carries them: a response schema on the route would make fastify serialize through it.
    transform: ({ schema, url, route }) => {
      const method = [route.method].flat()[0] ?? '';
      const response = documentedResponses(method, url);
      return { schema: response ? { ...schema, response } : schema, url };
    },
    openapi: {
      // 3.1: JSON Schema proper (nullable types, `const`), as the shapes are written.
      openapi: '3.1.0',
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
  const auth = new Authenticator(token, state);
  app.decorateRequest('principal', null as never); // set by the onRequest hook below
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1/')) return;
    request.principal = await auth.identify(request.headers.authorization);
  });
  // Every `/v1/apps/{app}/...` route answers for an app that exists (a missing app is named as
  // such, as Fly does, before any machine or volume); and an organization's token never reaches
  // another organization's apps: they do not exist for it.
  app.addHook('preHandler', async (request) => {
    const name = (request.params as { app?: string } | undefined)?.app;
    const principal = request.principal;
    if (name === undefined || !principal) return;
    const row = await state.app(name);
    if (!row || (!principal.operator && row.org !== principal.org)) {
      throw flapsError('FLAPS_ERR_APP_NOT_FOUND', `app ${name} not found`);
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    meters.requests.add(1, {
      route: request.routeOptions.url ?? 'unknown',
      method: request.method,
      status: reply.statusCode,
    });
    // A 412 of a create is no room; other 412s (a worker's wrong state, a wait's version) are not.
    if (
      reply.statusCode === 412 &&
      request.method === 'POST' &&
      request.routeOptions.url === '/v1/apps/:app/machines'
    )
      meters.placementFailures.add(1);
  });
  imageResolution(app, images.rows);
  appRoutes(app, state, flyd);
  tokenRoutes(app, state, auth);
  const placements = new PlacementTracker();
  machineRoutes(app, state, flyd, placements);
  platformRoutes(app, state, placements);
  volumeRoutes(app, state, flyd);
  migrateRoutes(app, state, flyd);
  logRoutes(app, state, flyd, logger);
  certificateRoutes(app, state);
  imageRoutes(app, images);
  secretRoutes(app, secrets);
  return app;
}

import type { FastifyInstance } from 'fastify';
import type { FleetState } from '../state.js';

/** `/v1/platform/*`: what the fleet offers. */
export function platformRoutes(app: FastifyInstance, state: FleetState): void {
  app.get('/v1/platform/regions', async () => ({ regions: await state.regions() }));
}

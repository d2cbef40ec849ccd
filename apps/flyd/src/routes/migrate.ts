import type { FastifyInstance } from 'fastify';
import type { MachineService } from '../machines/service.js';
import type { MigrateRequest } from '../migrate/migrate.js';
import { requestNonce } from './leases.js';
import type { MachineRouteDeps } from './machines.js';

/** `POST /v1/machines/{id}/migrate`: flaps names the target worker (same region, ready). */
export function migrateRoutes(
  app: FastifyInstance,
  machines: MachineService,
  leases: MachineRouteDeps['leases'],
): void {
  app.post<{ Params: { id: string }; Body: MigrateRequest }>(
    '/v1/machines/:id/migrate',
    {
      schema: {
        body: {
          type: 'object',
          required: ['target_url', 'target_host_id'],
          additionalProperties: false,
          properties: {
            target_url: { type: 'string', pattern: '^https?://' },
            target_host_id: { type: 'string', minLength: 1, maxLength: 200 },
          },
        },
      },
    },
    async (request) => {
      leases.check(request.params.id, requestNonce(request.headers));
      await machines.migrate(request.params.id, request.body);
      return { ok: true, host_id: request.body.target_host_id };
    },
  );
}

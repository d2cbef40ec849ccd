import type { FlydClient } from '@fleet/flyd-client';
import { machineConfigSchema } from '@fleet/machine-config';
import type { FastifyInstance } from 'fastify';
import { configValidator } from '../errors.js';
import { leaseNonce } from './leases.js';
import type { Owner } from './machine-lookup.js';

/** Update (a new version), metadata and cordon, forwarded to the machine's worker. */
export function machineSettingsRoutes(app: FastifyInstance, flyd: FlydClient, owner: Owner): void {
  app.post<{ Params: { app: string; id: string }; Body: { config: Record<string, unknown> } }>(
    '/v1/apps/:app/machines/:id',
    {
      schema: {
        body: { type: 'object', required: ['config'], properties: { config: machineConfigSchema } },
      },
      validatorCompiler: configValidator,
    },
    async (request) => {
      const { app: appName, id } = request.params;
      return flyd.call(
        await owner(appName, id),
        'POST',
        `/v1/machines/${id}`,
        { config: request.body.config },
        { leaseNonce: leaseNonce(request.headers) },
      );
    },
  );

  app.get<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/machines/:id/metadata',
    async (request) => {
      const { app: appName, id } = request.params;
      return flyd.call(await owner(appName, id), 'GET', `/v1/machines/${id}/metadata`);
    },
  );

  app.post<{ Params: { app: string; id: string; key: string }; Body: { value: string } }>(
    '/v1/apps/:app/machines/:id/metadata/:key',
    {
      schema: {
        body: { type: 'object', required: ['value'], properties: { value: { type: 'string' } } },
      },
    },
    async (request, reply) => {
      const { app: appName, id, key } = request.params;
      await flyd.call(
        await owner(appName, id),
        'POST',
        `/v1/machines/${id}/metadata/${encodeURIComponent(key)}`,
        { value: request.body.value },
        { leaseNonce: leaseNonce(request.headers) },
      );
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: { app: string; id: string; key: string } }>(
    '/v1/apps/:app/machines/:id/metadata/:key',
    async (request, reply) => {
      const { app: appName, id, key } = request.params;
      await flyd.call(
        await owner(appName, id),
        'DELETE',
        `/v1/machines/${id}/metadata/${encodeURIComponent(key)}`,
        undefined,
        { leaseNonce: leaseNonce(request.headers) },
      );
      return reply.code(204).send();
    },
  );

  for (const action of ['cordon', 'uncordon'] as const) {
    app.post<{ Params: { app: string; id: string } }>(
      `/v1/apps/:app/machines/:id/${action}`,
      async (request) => {
        const { app: appName, id } = request.params;
        return flyd.call(
          await owner(appName, id),
          'POST',
          `/v1/machines/${id}/${action}`,
          undefined,
          { leaseNonce: leaseNonce(request.headers) },
        );
      },
    );
  }
}

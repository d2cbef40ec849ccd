import { machineConfigSchema } from '@fleet/machine-config';
import type { FastifyInstance } from 'fastify';
import { configValidator } from '../errors.js';
import type { LeaseStore } from '../machines/lease-store.js';
import type { MachineStore } from '../machines/machine-store.js';
import type { MachineService } from '../machines/service.js';
import { machineView } from '../machines/view.js';
import { requestNonce } from './leases.js';

export interface SettingsRouteDeps {
  machines: MachineService;
  leases: LeaseStore;
  store: MachineStore;
  hostId: string;
}

const metadataKey = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    key: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
  },
};

/** Changing a machine without replacing it: a new config version, metadata, cordon. */
export function machineSettingsRoutes(app: FastifyInstance, deps: SettingsRouteDeps): void {
  const guard = (id: string, headers: Record<string, unknown>) =>
    deps.leases.check(id, requestNonce(headers));

  app.post<{ Params: { id: string }; Body: { config: Record<string, unknown> } }>(
    '/v1/machines/:id',
    {
      schema: {
        body: { type: 'object', required: ['config'], properties: { config: machineConfigSchema } },
      },
      validatorCompiler: configValidator,
    },
    async (request) => {
      guard(request.params.id, request.headers);
      const machine = await deps.machines.update(request.params.id, request.body.config);
      return machineView(machine, deps.hostId, deps.store.events(machine.id));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/machines/:id/metadata',
    async (request) => deps.machines.get(request.params.id).config.metadata ?? {},
  );

  app.post<{ Params: { id: string; key: string }; Body: { value: string } }>(
    '/v1/machines/:id/metadata/:key',
    {
      schema: {
        params: metadataKey,
        body: {
          type: 'object',
          required: ['value'],
          properties: { value: { type: 'string', maxLength: 4096 } },
        },
      },
    },
    async (request, reply) => {
      guard(request.params.id, request.headers);
      await deps.machines.setMetadata(request.params.id, request.params.key, request.body.value);
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: { id: string; key: string } }>(
    '/v1/machines/:id/metadata/:key',
    { schema: { params: metadataKey } },
    async (request, reply) => {
      guard(request.params.id, request.headers);
      await deps.machines.setMetadata(request.params.id, request.params.key, undefined);
      return reply.code(204).send();
    },
  );

  for (const [path, cordoned] of [
    ['cordon', true],
    ['uncordon', false],
  ] as const) {
    app.post<{ Params: { id: string } }>(`/v1/machines/:id/${path}`, async (request) => {
      guard(request.params.id, request.headers);
      await deps.machines.cordon(request.params.id, cordoned);
      return { ok: true };
    });
  }
}

import type { FastifyInstance } from 'fastify';
import { flydError } from '../errors.js';
import { type LeaseStore, leaseNonceHeader } from '../machines/lease-store.js';
import type { MachineService } from '../machines/service.js';

const leaseBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    ttl: { type: 'integer', minimum: 1, maximum: 3600 },
    description: { type: 'string', maxLength: 256 },
  },
};

/** `/v1/machines/{id}/lease`: Fly's machine leases (answers `{status, data}` as Fly does). */
export function leaseRoutes(
  app: FastifyInstance,
  machines: MachineService,
  leases: LeaseStore,
): void {
  app.get<{ Params: { id: string } }>('/v1/machines/:id/lease', async (request) => {
    machines.get(request.params.id);
    const lease = leases.active(request.params.id);
    if (!lease)
      throw flydError('FLYD_ERR_NO_LEASE', `lease not found: machine ${request.params.id}`);
    return { status: 'success', data: lease };
  });

  app.post<{
    Params: { id: string };
    Querystring: { ttl?: string };
    Body: { ttl?: number; description?: string } | undefined;
  }>('/v1/machines/:id/lease', { schema: { body: leaseBody } }, async (request) => {
    machines.get(request.params.id);
    const ttlSeconds =
      request.body?.ttl ?? (request.query.ttl === undefined ? 30 : Number(request.query.ttl));
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 3600) {
      throw flydError('FLYD_ERR_BAD_REQUEST', 'ttl must be whole seconds between 1 and 3600');
    }
    const lease = leases.acquire(request.params.id, {
      ttlSeconds,
      owner: String(request.headers['fly-lease-owner'] ?? 'api'),
      description: request.body?.description ?? '',
      nonce: requestNonce(request.headers),
    });
    return { status: 'success', data: lease };
  });

  app.delete<{ Params: { id: string } }>('/v1/machines/:id/lease', async (request) => {
    machines.get(request.params.id);
    leases.release(request.params.id, requestNonce(request.headers));
    return { ok: true };
  });
}

/** The lease nonce a request carries, for the lease check of a machine change. */
export function requestNonce(headers: Record<string, unknown>): string | undefined {
  const value = headers[leaseNonceHeader];
  return typeof value === 'string' ? value : undefined;
}

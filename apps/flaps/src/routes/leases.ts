import type { FlydClient } from '@fleet/flyd-client';
import type { FastifyInstance } from 'fastify';
import type { Owner } from './machine-lookup.js';

/** The lease nonce a caller sent, passed on to the worker that checks it. */
export function leaseNonce(headers: Record<string, unknown>): string | undefined {
  const value = headers['fly-machine-lease-nonce'];
  return typeof value === 'string' ? value : undefined;
}

/**
 * `/v1/apps/{app}/machines/{id}/lease`: Fly's machine leases, kept by the worker that owns the
 * machine. TTL in the query (`?ttl=`) or the body; `fly-machine-lease-nonce` refreshes or
 * releases a lease one holds.
 */
export function leaseRoutes(app: FastifyInstance, flyd: FlydClient, owner: Owner): void {
  const path = (id: string) => `/v1/machines/${id}/lease`;

  app.get<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/machines/:id/lease',
    async (request) => {
      const { app: appName, id } = request.params;
      return flyd.call(await owner(appName, id), 'GET', path(id));
    },
  );

  app.post<{
    Params: { app: string; id: string };
    Querystring: { ttl?: string };
    Body: { ttl?: number | string; description?: string } | undefined;
  }>('/v1/apps/:app/machines/:id/lease', async (request) => {
    const { app: appName, id } = request.params;
    const ttl = request.body?.ttl ?? request.query.ttl;
    const body = {
      ttl: ttl === undefined ? undefined : Number(ttl),
      description: request.body?.description,
    };
    return flyd.call(await owner(appName, id), 'POST', path(id), body, {
      leaseNonce: leaseNonce(request.headers),
    });
  });

  app.delete<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/machines/:id/lease',
    async (request) => {
      const { app: appName, id } = request.params;
      return flyd.call(await owner(appName, id), 'DELETE', path(id), undefined, {
        leaseNonce: leaseNonce(request.headers),
      });
    },
  );
}

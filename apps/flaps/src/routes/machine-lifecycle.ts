import type { FlydClient } from '@fleet/flyd-client';
import type { FastifyInstance } from 'fastify';
import { flapsError } from '../errors.js';
import { graceSeconds, signalOf } from './fly-params.js';
import { leaseNonce } from './leases.js';
import type { Owner } from './machine-lookup.js';

/** Start, stop, restart, signal and destroy, forwarded to the owning worker under the lease. */
export function machineLifecycleRoutes(app: FastifyInstance, flyd: FlydClient, owner: Owner): void {
  app.post<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/machines/:id/start',
    async (request) => {
      const { app: appName, id } = request.params;
      const answer = await flyd.call<{ previous_state: string }>(
        await owner(appName, id),
        'POST',
        `/v1/machines/${id}/start`,
        undefined,
        { leaseNonce: leaseNonce(request.headers) },
      );
      return { previous_state: answer.previous_state, migrated: false, new_host: '' };
    },
  );

  app.post<{
    Params: { app: string; id: string };
    Body: { signal?: string | number; timeout?: number | string } | undefined;
  }>('/v1/apps/:app/machines/:id/stop', async (request) => {
    const { app: appName, id } = request.params;
    const body = request.body ?? {};
    const timeout = graceSeconds(body.timeout);
    const signal = body.signal === undefined ? undefined : signalOf(body.signal);
    await flyd.call(
      await owner(appName, id),
      'POST',
      `/v1/machines/${id}/stop`,
      { signal, timeout },
      { leaseNonce: leaseNonce(request.headers) },
    );
    return { ok: true };
  });

  app.post<{
    Params: { app: string; id: string };
    Querystring: { timeout?: string; signal?: string };
    Body: { timeout?: number | string; signal?: string | number } | undefined;
  }>('/v1/apps/:app/machines/:id/restart', async (request) => {
    const { app: appName, id } = request.params;
    const rawTimeout = request.body?.timeout ?? request.query.timeout;
    const rawSignal = request.body?.signal ?? request.query.signal;
    const body = {
      timeout: graceSeconds(rawTimeout),
      signal: rawSignal === undefined ? undefined : signalOf(rawSignal),
    };
    await flyd.call(await owner(appName, id), 'POST', `/v1/machines/${id}/restart`, body, {
      leaseNonce: leaseNonce(request.headers),
    });
    return { ok: true };
  });

  app.post<{ Params: { app: string; id: string }; Body: { signal?: string | number } | undefined }>(
    '/v1/apps/:app/machines/:id/signal',
    async (request) => {
      const { app: appName, id } = request.params;
      if (request.body?.signal === undefined)
        throw flapsError('FLAPS_ERR_BAD_REQUEST', 'signal is required');
      const signal = signalOf(request.body.signal);
      await flyd.call(
        await owner(appName, id),
        'POST',
        `/v1/machines/${id}/signal`,
        { signal },
        { leaseNonce: leaseNonce(request.headers) },
      );
      return { ok: true };
    },
  );

  app.delete<{
    Params: { app: string; id: string };
    Querystring: { kill?: string; force?: string };
  }>('/v1/apps/:app/machines/:id', async (request) => {
    const { app: appName, id } = request.params;
    const kill = request.query.kill === 'true' || request.query.force === 'true';
    await flyd.call(
      await owner(appName, id),
      'DELETE',
      `/v1/machines/${id}?kill=${kill}`,
      undefined,
      {
        leaseNonce: leaseNonce(request.headers),
      },
    );
    return { ok: true };
  });
}

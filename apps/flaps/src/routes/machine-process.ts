import type { FlydClient } from '@fleet/flyd-client';
import type { FastifyInstance } from 'fastify';
import { leaseNonce } from './leases.js';
import type { Owner } from './machine-lookup.js';

/** Suspend, versions, ps and exec, forwarded to the machine's worker (Fly's shapes). */
export function machineProcessRoutes(app: FastifyInstance, flyd: FlydClient, owner: Owner): void {
  app.post<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/machines/:id/suspend',
    async (request) => {
      const { app: appName, id } = request.params;
      await flyd.call(await owner(appName, id), 'POST', `/v1/machines/${id}/suspend`, undefined, {
        leaseNonce: leaseNonce(request.headers),
      });
      return { ok: true };
    },
  );

  for (const what of ['versions', 'ps'] as const) {
    app.get<{ Params: { app: string; id: string } }>(
      `/v1/apps/:app/machines/:id/${what}`,
      async (request) => {
        const { app: appName, id } = request.params;
        return flyd.call(await owner(appName, id), 'GET', `/v1/machines/${id}/${what}`);
      },
    );
  }

  app.post<{
    Params: { app: string; id: string };
    Body: { cmd?: string; command?: string[]; timeout?: number } | undefined;
  }>(
    '/v1/apps/:app/machines/:id/exec',
    {
      schema: {
        body: {
          type: 'object',
          properties: {
            cmd: { type: 'string' },
            command: { type: 'array', items: { type: 'string' }, minItems: 1 },
            timeout: { type: 'number', exclusiveMinimum: 0, maximum: 600 },
          },
        },
      },
    },
    async (request) => {
      const { app: appName, id } = request.params;
      const timeout = request.body?.timeout ?? 30;
      return flyd.call(
        await owner(appName, id),
        'POST',
        `/v1/machines/${id}/exec`,
        request.body ?? {},
        { leaseNonce: leaseNonce(request.headers), timeoutMs: (timeout + 5) * 1000 },
      );
    },
  );
}

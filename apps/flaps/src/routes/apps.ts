import type { FlydClient } from '@fleet/flyd-client';
import { appNamePattern } from '@fleet/machine-config';
import type { FastifyInstance } from 'fastify';
import { destroyAppResources } from '../app-teardown.js';
import { orgFor } from '../auth.js';
import { flapsError } from '../errors.js';
import type { AppRow, AppSummary, FleetState } from '../state.js';

const appName = new RegExp(appNamePattern);

function appView(app: AppSummary) {
  return {
    id: app.name,
    name: app.name,
    status: 'deployed',
    network: app.network,
    organization: { name: app.org, slug: app.org },
    machine_count: app.machine_count,
    volume_count: app.volume_count,
    created_at: app.created_at,
  };
}

/** `/v1/apps`: create (Fly takes `app_name`; `name` is accepted too), get, list by org, delete. */
export function appRoutes(app: FastifyInstance, state: FleetState, flyd: FlydClient): void {
  app.post<{ Body: { app_name?: string; name?: string; org_slug?: string; network?: string } }>(
    '/v1/apps',
    {
      schema: {
        body: {
          type: 'object',
          properties: {
            app_name: { type: 'string' },
            name: { type: 'string' },
            org_slug: { type: 'string', maxLength: 63 },
            network: { type: 'string', maxLength: 63 },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const name = body.app_name ?? body.name;
      if (name === undefined) throw flapsError('FLAPS_ERR_BAD_REQUEST', 'app_name is required');
      if (!appName.test(name)) {
        throw flapsError(
          'FLAPS_ERR_BAD_REQUEST',
          `app_name ${JSON.stringify(name)} must be lowercase letters, digits and dashes (at most 63)`,
        );
      }
      const row: AppRow = {
        name,
        org: orgFor(request.principal, body.org_slug) ?? 'personal',
        // fly-go sends `network: ""` when none was chosen.
        network: body.network || 'default',
        created_at: new Date().toISOString(),
      };
      if (!(await state.createApp(row)))
        throw flapsError('FLAPS_ERR_NAME_TAKEN', `name_taken: app ${name} already exists`);
      return reply.code(201).send(appView({ ...row, machine_count: 0, volume_count: 0 }));
    },
  );

  app.get<{ Querystring: { org_slug?: string } }>('/v1/apps', async (request) => {
    const apps = await state.apps(orgFor(request.principal, request.query.org_slug));
    return { total_apps: apps.length, apps: apps.map(appView) };
  });

  app.get<{ Params: { app: string } }>('/v1/apps/:app', async (request) => {
    const row = await state.appSummary(request.params.app);
    if (!row) throw flapsError('FLAPS_ERR_APP_NOT_FOUND', `app ${request.params.app} not found`);
    return appView(row);
  });

  // Fly deletes the app with its machines and volumes (`?force=true` is accepted; Fleet kills
  // running machines either way, see app-teardown.ts), answering 202.
  app.delete<{ Params: { app: string }; Querystring: { force?: string } }>(
    '/v1/apps/:app',
    async (request, reply) => {
      const name = request.params.app; // it exists: server.ts checks before any route
      await destroyAppResources(state, flyd, name);
      await state.deleteApp(name);
      return reply.code(202).send();
    },
  );
}

import { constants } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { flapsError } from '../errors.js';
import type { FlydClient } from '../flyd-client.js';
import { type PlacementTracker, placeMachine } from '../placement.js';
import type { FleetState, MachineRow } from '../state.js';
import { mountedVolumeHost } from '../volume-placement.js';
import { leaseNonce, leaseRoutes } from './leases.js';
import { machineProcessRoutes } from './machine-process.js';
import { machineSettingsRoutes } from './machine-settings.js';

const waitStates = ['created', 'started', 'stopped', 'suspended', 'destroyed'];

/** A machine as listed from corrosion (the list spans every worker; events live on the worker). */
function listedMachine(row: MachineRow) {
  return {
    id: row.id,
    name: row.id,
    state: row.state,
    region: row.region,
    instance_id: row.instance_id,
    private_addr: row.private_addr,
    config: JSON.parse(row.config) as unknown,
    host_id: row.host_id,
    created_at: row.created_at,
    updated_at: row.updated_at,
    events: [],
  };
}

interface CreateBody {
  name?: string;
  /** A region expression: `iad`, `iad,dfw`, `lhr,eu`, `any`. */
  region?: string;
  /** Machines with the same placement id spread over workers together (default: the app). */
  placement_id?: string;
  config: { guest?: { memory_mb?: number }; [key: string]: unknown };
  skip_launch?: boolean;
}

/** `/v1/apps/{app}/machines`: placement and forwarding to the owning worker's flyd. */
export function machineRoutes(
  app: FastifyInstance,
  state: FleetState,
  flyd: FlydClient,
  placements: PlacementTracker,
): void {
  const requireApp = async (name: string) => {
    if (!(await state.app(name)))
      throw flapsError('FLAPS_ERR_APP_NOT_FOUND', `app ${name} not found`);
  };
  /** The worker API that owns a machine of this app. */
  const owner = async (appName: string, id: string) => {
    const machine = await state.machine(id);
    if (!machine || machine.app !== appName)
      throw flapsError('FLAPS_ERR_MACHINE_NOT_FOUND', `machine ${id} not found in app ${appName}`);
    const host = await state.worker(machine.host_id);
    if (!host?.flyd_addr)
      throw flapsError(
        'FLAPS_ERR_WORKER_UNREACHABLE',
        `machine ${id}: its worker ${machine.host_id} is unknown`,
      );
    return host.flyd_addr;
  };

  app.post<{ Params: { app: string }; Body: CreateBody }>(
    '/v1/apps/:app/machines',
    {
      schema: {
        body: {
          type: 'object',
          required: ['config'],
          properties: {
            name: { type: 'string', maxLength: 63 },
            region: { type: 'string', maxLength: 200 },
            placement_id: { type: 'string', maxLength: 200 },
            config: { type: 'object' },
            skip_launch: { type: 'boolean' },
          },
        },
      },
    },
    async (request) => {
      await requireApp(request.params.app);
      const { config, region, name, skip_launch } = request.body;
      const placementId = request.body.placement_id ?? request.params.app;
      const memoryMb = config.guest?.memory_mb ?? 256;
      // A machine that mounts a volume goes to the volume's worker.
      const pinned = await mountedVolumeHost(state, request.params.app, config, region);
      const [hosts, counts] = await Promise.all([
        state.readyWorkers(),
        state.appMachineCounts(request.params.app),
      ]);
      // From here to reserve() nothing awaits: the choice and its reservation are one step.
      const view = placements.view(placementId, hosts, counts);
      const candidates =
        pinned === undefined ? view.hosts : view.hosts.filter((host) => host.id === pinned);
      if (pinned !== undefined && candidates.length === 0)
        throw flapsError(
          'FLAPS_ERR_WORKER_UNREACHABLE',
          `the volume's worker ${pinned} is not ready`,
        );
      const host = placeMachine(candidates, { region, memoryMb, sameGroup: view.sameGroup });
      const done = placements.reserve(placementId, host.id, memoryMb);
      try {
        const created = await flyd.call(host.flyd_addr, 'POST', '/v1/machines', {
          app: request.params.app,
          name,
          region: host.region,
          config,
          skip_launch,
        });
        done(true);
        return created;
      } catch (error) {
        done(false);
        throw error;
      }
    },
  );

  app.get<{
    Params: { app: string };
    Querystring: { region?: string; state?: string; include_deleted?: string };
  }>('/v1/apps/:app/machines', async (request) => {
    await requireApp(request.params.app);
    const { region, state: wanted, include_deleted } = request.query;
    const rows = await state.machines(request.params.app, {
      region,
      state: wanted,
      includeDeleted: include_deleted === 'true',
    });
    return rows.map(listedMachine);
  });

  app.get<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/machines/:id/events',
    async (request) => {
      const { app: appName, id } = request.params;
      const machine = await flyd.call<{ events: unknown[] }>(
        await owner(appName, id),
        'GET',
        `/v1/machines/${id}`,
      );
      return machine.events;
    },
  );

  app.get<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/machines/:id',
    async (request) => {
      const { app: appName, id } = request.params;
      return flyd.call(await owner(appName, id), 'GET', `/v1/machines/${id}`);
    },
  );

  app.post<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/machines/:id/start',
    async (request) => {
      const { app: appName, id } = request.params;
      const answer = await flyd.call<{ previous_state: string }>(
        await owner(appName, id),
        'POST',
        `/v1/machines/${id}/start`,
      );
      return { previous_state: answer.previous_state, migrated: false, new_host: '' };
    },
  );

  app.post<{
    Params: { app: string; id: string };
    Body: { signal?: string; timeout?: number | string } | undefined;
  }>('/v1/apps/:app/machines/:id/stop', async (request) => {
    const { app: appName, id } = request.params;
    const body = request.body ?? {};
    const timeout = body.timeout === undefined ? undefined : seconds(body.timeout, 'timeout');
    await flyd.call(
      await owner(appName, id),
      'POST',
      `/v1/machines/${id}/stop`,
      { signal: body.signal, timeout },
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
      timeout: rawTimeout === undefined ? undefined : seconds(rawTimeout, 'timeout'),
      signal: rawSignal === undefined ? undefined : signalName(rawSignal),
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
      const signal = signalName(request.body.signal);
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

  app.get<{
    Params: { app: string; id: string };
    Querystring: { state?: string; timeout?: string };
  }>('/v1/apps/:app/machines/:id/wait', async (request) => {
    const { app: appName, id } = request.params;
    const wanted = request.query.state ?? 'started';
    if (!waitStates.includes(wanted))
      throw flapsError('FLAPS_ERR_BAD_REQUEST', `state must be one of ${waitStates.join(', ')}`);
    const timeout = Math.min(
      request.query.timeout === undefined ? 60 : seconds(request.query.timeout, 'timeout'),
      60,
    );
    const flydAddr = await owner(appName, id);
    await flyd.call(
      flydAddr,
      'GET',
      `/v1/machines/${id}/wait?state=${wanted}&timeout=${timeout}`,
      undefined,
      { timeoutMs: (timeout + 5) * 1000 },
    );
    return { ok: true };
  });
  leaseRoutes(app, flyd, owner);
  machineSettingsRoutes(app, flyd, owner);
  machineProcessRoutes(app, flyd, owner);
}

/** A signal as a name (`SIGTERM`, `TERM`) or a number (`15`), as Fly's clients send it. */
function signalName(value: string | number): string {
  const text = String(value).toUpperCase();
  const name = /^\d+$/.test(text)
    ? Object.entries(constants.signals).find(([, number]) => number === Number(text))?.[0]
    : text.startsWith('SIG')
      ? text
      : `SIG${text}`;
  if (name === undefined || !(name in constants.signals)) {
    throw flapsError(
      'FLAPS_ERR_BAD_REQUEST',
      `signal ${JSON.stringify(value)} is not a signal name or number`,
    );
  }
  return name;
}

/** Seconds as Fly's clients send them: a number, or Go-style `10s` / `1m`. */
function seconds(value: number | string, field: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(value));
  if (!match)
    throw flapsError('FLAPS_ERR_BAD_REQUEST', `${field} must be seconds (a number, or like 10s)`);
  const amount = Number(match[1]);
  return match[2] === 'ms' ? amount / 1000 : match[2] === 'm' ? amount * 60 : amount;
}

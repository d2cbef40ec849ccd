import { imageRefParts } from '@fleet/images';
import {
  durationMs,
  guestOf,
  machineConfigSchema,
  machineNameSchema,
  signalName,
} from '@fleet/machine-config';
import type { FastifyInstance } from 'fastify';
import { configValidator, flapsError } from '../errors.js';
import type { FlydClient } from '../flyd-client.js';
import { hostStatusOf } from '../host-status.js';
import { type PlacementTracker, placeMachine } from '../placement.js';
import type { CheckRow, FleetState, MachineRow } from '../state.js';
import { mountedVolumeHost } from '../volume-placement.js';
import { leaseNonce, leaseRoutes } from './leases.js';
import { machineProcessRoutes } from './machine-process.js';
import { machineSettingsRoutes } from './machine-settings.js';

const waitStates = ['created', 'started', 'stopped', 'suspended', 'destroyed', 'settled'];
/** Fly's `settled`: any state a machine rests in. */
const settledStates = ['started', 'stopped', 'suspended', 'destroyed'];

/** Bound on the list's call to each worker for its machines' recent events. */
const listEventsTimeoutMs = 2_000;

/** A machine as listed from corrosion (the list spans every worker; events live on the worker). */
function listedMachine(row: MachineRow, checks: CheckRow[], events: unknown[]) {
  const config = JSON.parse(row.config) as { image?: unknown };
  return {
    id: row.id,
    name: row.name || row.id,
    state: row.state,
    region: row.region,
    instance_id: row.instance_id,
    version: row.instance_id,
    private_addr: row.private_addr,
    private_ip: privateIp(row.private_addr),
    config,
    // `name:tag`, or `name@sha256:...` once flaps pinned an uploaded image (image-resolution.ts).
    image_ref: { registry: 'local', ...imageRefParts(String(config.image ?? '')) },
    host_id: row.host_id,
    host_status: hostStatusOf(row.host_state),
    created_at: row.created_at,
    updated_at: row.updated_at,
    events,
    checks,
  };
}

/**
 * The recent events (newest first, as flyd lists them: its last 10) of the listed machines, by
 * machine: one call per worker that holds any of them, in parallel, each bounded by
 * `listEventsTimeoutMs`. Events live only on the worker, so a worker that does not answer leaves
 * its machines' events empty rather than failing a list that corrosion alone could answer.
 */
async function recentEvents(
  state: FleetState,
  flyd: FlydClient,
  appName: string,
  rows: MachineRow[],
): Promise<Map<string, unknown[]>> {
  const byMachine = new Map<string, unknown[]>();
  // A down host is not asked: its machines list without events rather than after a timeout.
  const reachable = rows.filter((row) => hostStatusOf(row.host_state) !== 'unreachable');
  const hostIds = [...new Set(reachable.map((row) => row.host_id))];
  await Promise.all(
    hostIds.map(async (hostId) => {
      try {
        const host = await state.worker(hostId);
        if (!host?.flyd_addr) return;
        // The race bounds the connect too, which undici's header and body timeouts do not.
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), listEventsTimeoutMs);
        });
        const listed = await Promise.race([
          flyd.call<{ id: string; events: unknown[] }[]>(
            host.flyd_addr,
            'GET',
            `/v1/machines?app=${encodeURIComponent(appName)}&include_deleted=true`,
            undefined,
            { timeoutMs: listEventsTimeoutMs },
          ),
          deadline,
        ]).finally(() => clearTimeout(timer));
        for (const machine of listed) byMachine.set(machine.id, machine.events);
      } catch {
        // The worker (or corrosion) did not answer in time: these machines list without events.
      }
    }),
  );
  return byMachine;
}

/** Fly clients read `private_ip`: the host part of the address the backhaul proxy dials. */
function privateIp(address: string | null): string | null {
  return address === null ? null : address.replace(/:\d+$/, '');
}

interface CreateBody {
  name?: string;
  /** A region expression: `iad`, `iad,dfw`, `lhr,eu`, `any`. */
  region?: string;
  /** Machines with the same placement id spread over workers together (default: the app). */
  placement_id?: string;
  /** Checked against @fleet/machine-config's schema before the handler runs. */
  config: Record<string, unknown>;
  skip_launch?: boolean;
  /** fly-go's `LeaseTTL`: take the new machine's lease at once; its nonce comes back as `nonce`. */
  lease_ttl?: number;
}

/** `/v1/apps/{app}/machines`: placement and forwarding to the owning worker's flyd. */
export function machineRoutes(
  app: FastifyInstance,
  state: FleetState,
  flyd: FlydClient,
  placements: PlacementTracker,
): void {
  /** The machine's row, or 404 when it is not one of this app's. */
  const machineOf = async (appName: string, id: string) => {
    const machine = await state.machine(id);
    if (!machine || machine.app !== appName) {
      // The app exists (server.ts checks before any route): the machine is what is missing.
      throw flapsError('FLAPS_ERR_MACHINE_NOT_FOUND', `machine ${id} not found in app ${appName}`);
    }
    return machine;
  };

  /** The worker API that owns a machine of this app; 503 at once when its host is down. */
  const owner = async (appName: string, id: string) => {
    const machine = await machineOf(appName, id);
    if (hostStatusOf(machine.host_state) === 'unreachable')
      throw flapsError(
        'FLAPS_ERR_WORKER_UNREACHABLE',
        `machine ${id}: its host ${machine.host_id} is down (its corrosion is dead to the cluster)`,
      );
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
            name: machineNameSchema,
            region: { type: 'string', maxLength: 200 },
            placement_id: { type: 'string', maxLength: 200 },
            config: machineConfigSchema,
            skip_launch: { type: 'boolean' },
            lease_ttl: { type: 'integer', minimum: 0, maximum: 3600 },
          },
        },
      },
      // Refused here, before placement: nothing is reserved or sent to a worker.
      validatorCompiler: configValidator,
    },
    async (request) => {
      const { config, region, name, skip_launch } = request.body;
      const placementId = request.body.placement_id ?? request.params.app;
      const { memoryMb } = guestOf(config);
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
        const created = await flyd.call<{ id: string }>(host.flyd_addr, 'POST', '/v1/machines', {
          app: request.params.app,
          name,
          region: host.region,
          config,
          skip_launch,
        });
        done(true);
        const leaseTtl = request.body.lease_ttl;
        if (!leaseTtl) return created;
        const lease = await flyd.call<{ data: { nonce: string } }>(
          host.flyd_addr,
          'POST',
          `/v1/machines/${created.id}/lease`,
          { ttl: leaseTtl },
        );
        return { ...created, nonce: lease.data.nonce };
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
    const { region, state: wanted, include_deleted } = request.query;
    const [rows, checks] = await Promise.all([
      state.machines(request.params.app, {
        region,
        state: wanted,
        includeDeleted: include_deleted === 'true',
      }),
      state.checks(request.params.app),
    ]);
    const events = await recentEvents(state, flyd, request.params.app, rows);
    return rows.map((row) =>
      listedMachine(row, checks.get(row.id) ?? [], events.get(row.id) ?? []),
    );
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
      const row = await machineOf(appName, id);
      // A down host cannot answer: its machine as corrosion last had it, marked unreachable.
      if (hostStatusOf(row.host_state) === 'unreachable') {
        const checks = await state.checks(appName, id);
        return listedMachine(row, checks.get(id) ?? [], []);
      }
      const [machine, checks] = await Promise.all([
        flyd.call<{ private_addr: string | null }>(
          await owner(appName, id),
          'GET',
          `/v1/machines/${id}`,
        ),
        state.checks(appName, id),
      ]);
      return {
        ...machine,
        private_ip: privateIp(machine.private_addr),
        host_status: hostStatusOf(row.host_state),
        checks: checks.get(id) ?? [],
      };
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

  app.get<{
    Params: { app: string; id: string };
    Querystring: {
      state?: string | string[];
      timeout?: string;
      instance_id?: string;
      version?: string;
    };
  }>('/v1/apps/:app/machines/:id/wait', async (request) => {
    const { app: appName, id } = request.params;
    // fly-go repeats `state` (`state=started&state=stopped`): any of them ends the wait.
    const wanted = [request.query.state ?? 'started'].flat().flatMap((one) => one.split(','));
    if (!wanted.every((one) => waitStates.includes(one)))
      throw flapsError('FLAPS_ERR_BAD_REQUEST', `state must be one of ${waitStates.join(', ')}`);
    const timeout = Math.min(
      request.query.timeout === undefined ? 60 : seconds(request.query.timeout, 'timeout'),
      60,
    );
    const flydAddr = await owner(appName, id);
    const version = request.query.instance_id ?? request.query.version;
    if (version !== undefined) {
      const machine = await flyd.call<{ instance_id: string }>(
        flydAddr,
        'GET',
        `/v1/machines/${id}`,
      );
      if (machine.instance_id !== version)
        throw flapsError(
          'FLAPS_ERR_WRONG_VERSION',
          `machine ${id} is at version ${machine.instance_id}, not ${version}`,
        );
    }
    const states = new Set(wanted.flatMap((one) => (one === 'settled' ? settledStates : [one])));
    const reached = await flyd.call<{ state: string; version: string }>(
      flydAddr,
      'GET',
      `/v1/machines/${id}/wait?state=${[...states].join(',')}&timeout=${timeout}`,
      undefined,
      { timeoutMs: (timeout + 5) * 1000 },
    );
    return { ok: true, state: reached.state, version: reached.version };
  });
  leaseRoutes(app, flyd, owner);
  machineSettingsRoutes(app, flyd, owner);
  machineProcessRoutes(app, flyd, owner);
}

/** A signal as Fly's clients send it (`SIGTERM`, `TERM`, `15`). */
function signalOf(value: string | number): string {
  const name = signalName(value);
  if (name === undefined)
    throw flapsError(
      'FLAPS_ERR_BAD_REQUEST',
      `signal ${JSON.stringify(value)} is not a signal name or number`,
    );
  return name;
}

/** Seconds as Fly's clients send them: a number, or a Go duration (`10s`, `1m30s`). */
function seconds(value: number | string, field: string): number {
  const ms = durationMs(value);
  if (ms === undefined)
    throw flapsError('FLAPS_ERR_BAD_REQUEST', `${field} must be seconds (a number, or like 10s)`);
  return ms / 1000;
}

/**
 * A stop or restart timeout as Fly's clients send it, in seconds. fly-go sends `"timeout": "0s"`
 * when its caller set none: that, like no timeout at all, leaves the machine's own grace period
 * (its `stop_config`, else flyd's default) rather than killing at once.
 */
function graceSeconds(raw: number | string | undefined): number | undefined {
  return raw === undefined ? undefined : seconds(raw, 'timeout') || undefined;
}

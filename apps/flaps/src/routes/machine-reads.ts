import type { FlydClient } from '@fleet/flyd-client';
import { imageRefParts } from '@fleet/images';
import type { FastifyInstance } from 'fastify';
import { flapsError } from '../errors.js';
import { machineStates } from '../fly-shapes.js';
import { hostStatusOf } from '../host-status.js';
import type { CheckRow, FleetState, MachineRow } from '../state.js';
import { listParam } from './fly-params.js';
import type { MachineLookup } from './machine-lookup.js';

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

/** The list (corrosion's rows with each worker's recent events), a machine, its events. */
export function machineReadRoutes(
  app: FastifyInstance,
  state: FleetState,
  flyd: FlydClient,
  { machineOf, owner }: MachineLookup,
): void {
  app.get<{
    Params: { app: string };
    Querystring: { region?: string; state?: string | string[]; include_deleted?: string };
  }>(
    '/v1/apps/:app/machines',
    // `include_deleted` is `true` or `false` (anything else is a 400, not a quiet `false`).
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { include_deleted: { enum: ['true', 'false'] } },
        },
      },
    },
    async (request) => {
      const { region, state: wanted, include_deleted } = request.query;
      const [rows, checks] = await Promise.all([
        state.machines(request.params.app, {
          region,
          states: wanted === undefined ? undefined : statesOf(wanted),
          includeDeleted: include_deleted === 'true',
        }),
        state.checks(request.params.app),
      ]);
      const events = await recentEvents(state, flyd, request.params.app, rows);
      return rows.map((row) =>
        listedMachine(row, checks.get(row.id) ?? [], events.get(row.id) ?? []),
      );
    },
  );

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
}

/**
 * Fly's `state` filter: machine states, comma-separated or repeated (as `wait` takes them), each
 * one Fly names: a misspelt one is a 400, not an empty list.
 */
function statesOf(list: string | string[]): string[] {
  const states = listParam(list);
  const unknown = states.find((each) => !machineStates.includes(each));
  if (unknown !== undefined)
    throw flapsError(
      'FLAPS_ERR_BAD_REQUEST',
      `state: ${unknown === '' ? 'an empty state' : `unknown machine state ${unknown}`} (a comma-separated list of ${machineStates.join(', ')})`,
    );
  return states;
}

import { constants } from 'node:os';
import { appNameSchema, machineConfigSchema, machineNameSchema } from '@fleet/machine-config';
import { longPolls } from '@fleet/service';
import type { FastifyInstance } from 'fastify';
import { configValidator, flydError } from '../errors.js';
import type { FsmEngine } from '../fsm/engine.js';
import type { LeaseStore } from '../machines/lease-store.js';
import type { MachineState, MachineStore } from '../machines/machine-store.js';
import type { CreateRequest, MachineService } from '../machines/service.js';
import type { StopSettings } from '../machines/stop-config.js';
import { machineView } from '../machines/view.js';
import type { ProcessRuntime } from '../runtime/process-runtime.js';
import { requestNonce } from './leases.js';

const states: MachineState[] = [
  'created',
  'starting',
  'started',
  'stopping',
  'stopped',
  'suspending',
  'suspended',
  'destroying',
  'destroyed',
];
// Any signal this OS knows by name (SIGTERM, SIGINT, SIGWINCH...).
const signals = Object.keys(constants.signals);

/** A create's body: the machine config and name by the schema flaps checks too. */
const createSchema = {
  body: {
    type: 'object',
    required: ['app', 'config'],
    properties: {
      id: { type: 'string', pattern: '^[0-9a-f]{14}$', 'x-rule': 'a machine id (14 hex digits)' },
      name: machineNameSchema,
      app: appNameSchema,
      region: { type: 'string', maxLength: 32 },
      config: machineConfigSchema,
      skip_launch: { type: 'boolean' },
      migrated_from: {
        type: 'object',
        required: ['host_id', 'updated_at'],
        properties: { host_id: { type: 'string' }, updated_at: { type: 'string' } },
      },
    },
  },
};

const stopBodySchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    signal: { type: 'string', enum: signals },
    timeout: { type: 'number', minimum: 0, maximum: 600 },
  },
};

/** A stop's signal and grace period as the caller gave them (seconds in the body), if at all. */
function stopRequest(body: { signal?: string; timeout?: number } | undefined): StopSettings {
  return {
    signal: body?.signal as NodeJS.Signals | undefined,
    timeoutMs: body?.timeout === undefined ? undefined : body.timeout * 1000,
  };
}

const idParams = { type: 'object', properties: { id: { type: 'string' } } };

export interface MachineRouteDeps {
  machines: MachineService;
  leases: LeaseStore;
  store: MachineStore;
  engine: FsmEngine;
  runtime: ProcessRuntime;
  hostId: string;
  stopTimeoutMs: number;
}

/** flyd's machine API (internal: flaps calls it with the flyd token). */
export function machineRoutes(app: FastifyInstance, deps: MachineRouteDeps): void {
  const during = longPolls(app, () =>
    flydError('FLYD_ERR_SHUTTING_DOWN', 'flyd is shutting down: call again'),
  );
  const view = (id: string) =>
    machineView(deps.machines.get(id), deps.hostId, deps.store.events(id));

  app.post<{ Body: CreateRequest }>(
    '/v1/machines',
    { schema: createSchema, validatorCompiler: configValidator },
    async (request) => {
      const { machine, events } = await deps.machines.create(request.body);
      return machineView(machine, deps.hostId, events);
    },
  );

  app.get<{ Querystring: { app?: string; include_deleted?: string } }>(
    '/v1/machines',
    async (request) => {
      const all = deps.store.list(request.query.app);
      const listed =
        request.query.include_deleted === 'true'
          ? all
          : all.filter((machine) => machine.state !== 'destroyed');
      return listed.map((machine) =>
        machineView(machine, deps.hostId, deps.store.events(machine.id, 10)),
      );
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/machines/:id',
    { schema: { params: idParams } },
    async (request) => view(request.params.id),
  );

  app.post<{ Params: { id: string } }>('/v1/machines/:id/start', async (request) => {
    deps.leases.check(request.params.id, requestNonce(request.headers));
    const { previous_state } = await deps.machines.start(request.params.id);
    return { ok: true, previous_state };
  });

  app.post<{ Params: { id: string }; Body: { signal?: string; timeout?: number } | undefined }>(
    '/v1/machines/:id/stop',
    { schema: { body: stopBodySchema } },
    async (request) => {
      deps.leases.check(request.params.id, requestNonce(request.headers));
      await deps.machines.stop(request.params.id, stopRequest(request.body));
      return { ok: true };
    },
  );

  app.post<{ Params: { id: string }; Body: { signal?: string; timeout?: number } | undefined }>(
    '/v1/machines/:id/restart',
    { schema: { body: stopBodySchema } },
    async (request) => {
      deps.leases.check(request.params.id, requestNonce(request.headers));
      await deps.machines.restart(request.params.id, stopRequest(request.body));
      return { ok: true };
    },
  );

  app.post<{ Params: { id: string }; Body: { signal: string } }>(
    '/v1/machines/:id/signal',
    {
      schema: {
        body: {
          type: 'object',
          required: ['signal'],
          additionalProperties: false,
          properties: { signal: { type: 'string', enum: signals } },
        },
      },
    },
    async (request) => {
      deps.leases.check(request.params.id, requestNonce(request.headers));
      deps.machines.signal(request.params.id, request.body.signal as NodeJS.Signals);
      return { ok: true };
    },
  );

  app.delete<{ Params: { id: string }; Querystring: { kill?: string; force?: string } }>(
    '/v1/machines/:id',
    async (request) => {
      const kill = request.query.kill === 'true' || request.query.force === 'true';
      deps.leases.check(request.params.id, requestNonce(request.headers));
      await deps.machines.destroy(request.params.id, kill);
      deps.leases.forget(request.params.id);
      return { ok: true };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { state?: string; timeout?: string } }>(
    '/v1/machines/:id/wait',
    async (request) => {
      // Several states, comma-separated (flaps passes Fly's repeated `state`): any one ends it.
      const wanted = (request.query.state ?? 'started').split(',') as MachineState[];
      if (!wanted.every((state) => states.includes(state)))
        throw flydError('FLYD_ERR_BAD_REQUEST', `state must be one of ${states.join(', ')}`);
      const seconds = request.query.timeout === undefined ? 60 : Number(request.query.timeout);
      if (!Number.isFinite(seconds) || seconds <= 0)
        throw flydError('FLYD_ERR_BAD_REQUEST', 'timeout must be a positive number of seconds');
      const machine = await during((signal) =>
        deps.machines.wait(request.params.id, wanted, Math.min(seconds, 60) * 1000, signal),
      );
      return { ok: true, state: machine.state, version: machine.instance_id };
    },
  );

  // The runs outlive a machine that migrated away: their history stays on this worker.
  app.get<{ Params: { id: string } }>('/v1/machines/:id/runs', async (request) => {
    const runs = deps.engine.history(request.params.id);
    if (runs.length === 0) deps.machines.get(request.params.id); // 404 for a machine never here
    return runs;
  });

  app.get('/v1/runs', async () => deps.engine.active());
}

import type { FlydClient } from '@fleet/flyd-client';
import {
  guestOf,
  guestSchema,
  snapshotIdSchema,
  volumeIdSchema,
  volumeNameSchema,
} from '@fleet/machine-config';
import type { FastifyInstance } from 'fastify';
import { configValidator, flapsError } from '../errors.js';
import { placeMachine, type WorkerHost } from '../placement.js';
import { regionsOf } from '../regions.js';
import type { FleetState, VolumeRow } from '../state.js';
import { appVolume, volumeWorker } from '../volume-placement.js';

const blockSizeBytes = 4096;

/** Fly's Volume object from corrosion's row (usage as of the volume's last change). */
function listedVolume(row: VolumeRow) {
  const blocks = Math.floor((row.size_gb * 1024 ** 3) / blockSizeBytes);
  const free = Math.max(0, blocks - Math.ceil(row.used_bytes / blockSizeBytes));
  return {
    id: row.id,
    name: row.name,
    state: row.state,
    size_gb: row.size_gb,
    region: row.region,
    zone: row.zone,
    encrypted: Boolean(row.encrypted),
    attached_machine_id: row.attached_machine_id,
    attached_alloc_id: null,
    created_at: row.created_at,
    blocks,
    block_size: blockSizeBytes,
    blocks_free: free,
    blocks_avail: free,
    fstype: row.fstype,
    snapshot_retention: row.snapshot_retention,
    auto_backup_enabled: Boolean(row.auto_backup_enabled),
    host_status: 'ok',
    host_id: row.host_id,
  };
}

/** Fly's CreateVolumeRequest (fields Fleet has no use for are accepted and ignored). */
interface CreateVolumeBody {
  name: string;
  region?: string;
  size_gb?: number | null;
  encrypted?: boolean | null;
  snapshot_retention?: number | null;
  auto_backup_enabled?: boolean | null;
  snapshot_id?: string | null;
  source_volume_id?: string | null;
  require_unique_zone?: boolean | null;
  /** fly-go's `MachineGuest` of the machine meant to mount it, checked as a config's `guest`. */
  compute?: Record<string, unknown> | null;
}

// Checked by configValidator (not fastify's own validator, which knows no `x-rule`), so a bad id
// is named in words: "id must be a volume id like vol_0123456789abcdef".
const params = {
  type: 'object',
  properties: { app: { type: 'string' }, id: volumeIdSchema },
};
const byId = { schema: { params }, validatorCompiler: configValidator };

const createSchema = {
  params: { type: 'object', properties: { app: { type: 'string' } } },
  body: {
    type: 'object',
    required: ['name'],
    properties: {
      name: volumeNameSchema,
      region: { type: 'string', maxLength: 200 },
      size_gb: { type: ['integer', 'null'], minimum: 1, maximum: 500 },
      encrypted: { type: ['boolean', 'null'] },
      snapshot_retention: { type: ['integer', 'null'], minimum: 1, maximum: 60 },
      auto_backup_enabled: { type: ['boolean', 'null'] },
      snapshot_id: { ...snapshotIdSchema, type: ['string', 'null'] },
      source_volume_id: { ...volumeIdSchema, type: ['string', 'null'] },
      require_unique_zone: { type: ['boolean', 'null'] },
      machines_only: { type: ['boolean', 'null'] },
      fstype: { type: ['string', 'null'] },
      compute: { ...guestSchema, type: ['object', 'null'] },
      compute_image: { type: 'string' },
    },
  },
};

/** `/v1/apps/{app}/volumes`: placed on a worker, kept by its flyd, listed from corrosion. */
export function volumeRoutes(app: FastifyInstance, state: FleetState, flyd: FlydClient): void {
  const owner = async (appName: string, id: string) =>
    (await volumeWorker(state, await appVolume(state, appName, id))).flyd_addr;

  app.get<{ Params: { app: string } }>('/v1/apps/:app/volumes', async (request) => {
    return (await state.volumes(request.params.app)).map(listedVolume);
  });

  app.post<{ Params: { app: string }; Body: CreateVolumeBody }>(
    '/v1/apps/:app/volumes',
    // The machine config's validator, for `compute`: the rules and words of `config.guest`.
    { schema: createSchema, validatorCompiler: configValidator },
    async (request) => {
      const appName = request.params.app;
      const body = request.body;
      const host = await volumeHost(state, appName, body);
      return flyd.call(host.flyd_addr, 'POST', '/v1/volumes', {
        app: appName,
        name: body.name,
        size_gb: body.size_gb ?? undefined,
        encrypted: body.encrypted ?? undefined,
        snapshot_retention: body.snapshot_retention ?? undefined,
        auto_backup_enabled: body.auto_backup_enabled ?? undefined,
        snapshot_id: body.snapshot_id ?? undefined,
        source_volume_id: body.source_volume_id ?? undefined,
      });
    },
  );

  app.get<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/volumes/:id',
    byId,
    async (request) => {
      const { app: appName, id } = request.params;
      return flyd.call(await owner(appName, id), 'GET', `/v1/volumes/${id}`);
    },
  );

  app.put<{
    Params: { app: string; id: string };
    Body: { snapshot_retention?: number | null; auto_backup_enabled?: boolean | null } | undefined;
  }>('/v1/apps/:app/volumes/:id', byId, async (request) => {
    const { app: appName, id } = request.params;
    return flyd.call(await owner(appName, id), 'POST', `/v1/volumes/${id}`, {
      snapshot_retention: request.body?.snapshot_retention ?? undefined,
      auto_backup_enabled: request.body?.auto_backup_enabled ?? undefined,
    });
  });

  app.delete<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/volumes/:id',
    byId,
    async (request) => {
      const { app: appName, id } = request.params;
      return flyd.call(await owner(appName, id), 'DELETE', `/v1/volumes/${id}`);
    },
  );

  app.put<{ Params: { app: string; id: string }; Body: { size_gb: number } }>(
    '/v1/apps/:app/volumes/:id/extend',
    {
      schema: {
        params,
        body: {
          type: 'object',
          required: ['size_gb'],
          properties: { size_gb: { type: 'integer', minimum: 1, maximum: 500 } },
        },
      },
      validatorCompiler: configValidator,
    },
    async (request) => {
      const { app: appName, id } = request.params;
      return flyd.call(await owner(appName, id), 'POST', `/v1/volumes/${id}/extend`, {
        size_gb: request.body.size_gb,
      });
    },
  );

  app.get<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/volumes/:id/snapshots',
    byId,
    async (request) => {
      const { app: appName, id } = request.params;
      return flyd.call(await owner(appName, id), 'GET', `/v1/volumes/${id}/snapshots`);
    },
  );

  app.post<{ Params: { app: string; id: string } }>(
    '/v1/apps/:app/volumes/:id/snapshots',
    byId,
    async (request) => {
      const { app: appName, id } = request.params;
      return flyd.call(await owner(appName, id), 'POST', `/v1/volumes/${id}/snapshots`);
    },
  );
}

/**
 * Where a new volume goes: a copy (`snapshot_id`, `source_volume_id`) on the worker that holds
 * its source; otherwise a ready worker of the requested region with the most free capacity,
 * spreading volumes of the same name over workers (Fly's `require_unique_zone`, on by default).
 */
async function volumeHost(
  state: FleetState,
  appName: string,
  body: CreateVolumeBody,
): Promise<WorkerHost> {
  let sourceHost: string | undefined;
  if (body.snapshot_id) {
    const snapshot = await state.snapshot(body.snapshot_id);
    if (!snapshot || snapshot.app !== appName)
      throw flapsError('FLAPS_ERR_VOLUME_NOT_FOUND', `snapshot ${body.snapshot_id} not found`);
    sourceHost = snapshot.host_id;
  } else if (body.source_volume_id) {
    sourceHost = (await appVolume(state, appName, body.source_volume_id)).host_id;
  }
  const hosts = await state.readyWorkers();
  if (sourceHost !== undefined) {
    const host = hosts.find((candidate) => candidate.id === sourceHost);
    if (!host)
      throw flapsError('FLAPS_ERR_WORKER_UNREACHABLE', `worker ${sourceHost} is not ready`);
    const allowed = regionsOf(body.region);
    if (allowed && !allowed.has(host.region)) {
      throw flapsError(
        'FLAPS_ERR_VOLUME_REGION',
        `the source is in region ${host.region}, not in ${body.region}: a copy stays on its source's worker`,
      );
    }
    return host;
  }
  const sameName = new Map<string, number>();
  if (body.require_unique_zone !== false) {
    for (const volume of await state.volumes(appName)) {
      if (volume.name === body.name)
        sameName.set(volume.host_id, (sameName.get(volume.host_id) ?? 0) + 1);
    }
  }
  return placeMachine(hosts, {
    region: body.region,
    // Room for the machine that will mount it, when the caller says which (none otherwise).
    memoryMb: body.compute ? guestOf({ guest: body.compute }).memoryMb : 0,
    sameGroup: sameName,
  });
}

import {
  appNameSchema,
  snapshotIdSchema,
  volumeIdSchema,
  volumeNameSchema,
} from '@fleet/machine-config';
import type { FastifyInstance } from 'fastify';
import { configValidator, flydError } from '../errors.js';
import type { MachineService } from '../machines/service.js';
import {
  type CreateVolumeRequest,
  type VolumeService,
  volumeRecordHeader,
} from '../volumes/service.js';
import type { VolumeRecord } from '../volumes/volume-store.js';

// Params go through fastify's own validator, which knows no `x-rule`: the pattern alone.
const idParams = { type: 'object', properties: { id: volumeIdSchema } };
/** A route on one volume: a path that names none is told in words (it was the bare pattern). */
const byId = { schema: { params: idParams }, validatorCompiler: configValidator };

const createSchema = {
  body: {
    type: 'object',
    required: ['app', 'name'],
    additionalProperties: false,
    properties: {
      id: volumeIdSchema,
      app: appNameSchema,
      name: volumeNameSchema,
      size_gb: { type: 'integer', minimum: 1, maximum: 500 },
      encrypted: { type: 'boolean' },
      snapshot_retention: { type: 'integer', minimum: 1, maximum: 60 },
      auto_backup_enabled: { type: 'boolean' },
      snapshot_id: snapshotIdSchema,
      source_volume_id: volumeIdSchema,
    },
  },
};

/** flyd's volume API (internal: flaps and other flyds call it with the flyd token). */
export function volumeRoutes(
  app: FastifyInstance,
  volumes: VolumeService,
  machines: MachineService,
): void {
  const view = (volume: VolumeRecord) => volumes.view(volume);
  // A tar body is not parsed: the import route streams it from the raw request.
  app.addContentTypeParser('application/x-tar', (_request, _payload, done) => done(null));

  app.post<{ Body: CreateVolumeRequest }>(
    '/v1/volumes',
    { schema: createSchema, validatorCompiler: configValidator },
    async (request) => view(await volumes.create(request.body)),
  );

  app.get<{ Querystring: { app?: string } }>('/v1/volumes', async (request) =>
    volumes.list(request.query.app).map(view),
  );

  app.get<{ Params: { id: string } }>('/v1/volumes/:id', byId, async (request) =>
    view(volumes.get(request.params.id)),
  );

  app.post<{
    Params: { id: string };
    Body: { snapshot_retention?: number | null; auto_backup_enabled?: boolean | null } | undefined;
  }>(
    '/v1/volumes/:id',
    {
      schema: {
        params: idParams,
        body: {
          type: ['object', 'null'],
          properties: {
            snapshot_retention: { type: ['integer', 'null'], minimum: 1, maximum: 60 },
            auto_backup_enabled: { type: ['boolean', 'null'] },
          },
        },
      },
      validatorCompiler: configValidator,
    },
    async (request) =>
      view(
        await volumes.update(request.params.id, {
          snapshot_retention: request.body?.snapshot_retention ?? undefined,
          auto_backup_enabled: request.body?.auto_backup_enabled ?? undefined,
        }),
      ),
  );

  app.post<{ Params: { id: string }; Body: { size_gb: number } }>(
    '/v1/volumes/:id/extend',
    {
      schema: {
        params: idParams,
        body: {
          type: 'object',
          required: ['size_gb'],
          properties: { size_gb: { type: 'integer', minimum: 1, maximum: 500 } },
        },
      },
      validatorCompiler: configValidator,
    },
    async (request) => {
      const { volume, needsRestart } = await volumes.extend(
        request.params.id,
        request.body.size_gb,
      );
      return { needs_restart: needsRestart, volume: view(volume) };
    },
  );

  app.delete<{ Params: { id: string } }>('/v1/volumes/:id', byId, async (request) =>
    view(
      await volumes.destroy(request.params.id, (machineId) => {
        const machine = machines.find(machineId);
        return machine !== undefined && machine.state !== 'destroyed';
      }),
    ),
  );

  app.get<{ Params: { id: string } }>('/v1/volumes/:id/snapshots', byId, async (request) =>
    volumes.snapshots(request.params.id).map(snapshotView),
  );

  app.post<{ Params: { id: string } }>('/v1/volumes/:id/snapshots', byId, async (request) =>
    snapshotView(await volumes.snapshot(request.params.id)),
  );

  app.put<{ Params: { id: string } }>(
    '/v1/volumes/:id/import',
    { ...byId, bodyLimit: Number.MAX_SAFE_INTEGER },
    async (request) => {
      const header = request.headers[volumeRecordHeader];
      if (typeof header !== 'string')
        throw flydError('FLYD_ERR_BAD_REQUEST', `the ${volumeRecordHeader} header is required`);
      const record = volumeRecordOf(header);
      if (record?.id !== request.params.id)
        throw flydError('FLYD_ERR_BAD_REQUEST', `${volumeRecordHeader} names another volume`);
      return view(await volumes.import(record, request.raw));
    },
  );
}

/** Fly's VolumeSnapshot object. */
function snapshotView(snapshot: {
  id: string;
  size: number;
  digest: string;
  created_at: string;
}): Record<string, unknown> {
  return {
    id: snapshot.id,
    size: snapshot.size,
    digest: snapshot.digest,
    created_at: snapshot.created_at,
    status: 'created',
    retention_days: null,
  };
}

/** The volume record a migrate's source sends (base64url JSON); undefined when it is not one. */
function volumeRecordOf(header: string): VolumeRecord | undefined {
  try {
    const record: unknown = JSON.parse(Buffer.from(header, 'base64url').toString());
    return record !== null && typeof record === 'object' ? (record as VolumeRecord) : undefined;
  } catch {
    return undefined; // not JSON: answered as a record of another volume, 400
  }
}

import { flapsError } from './errors.js';
import type { WorkerHost } from './placement.js';
import { regionsOf } from './regions.js';
import type { FleetState, VolumeRow } from './state.js';

/** A machine config's mounts, as Fly's clients send them. */
interface MountConfig {
  volume?: unknown;
  path?: unknown;
}

/** A live volume of the app, or 404. */
export async function appVolume(state: FleetState, app: string, id: string): Promise<VolumeRow> {
  const volume = await state.volume(id);
  if (!volume || volume.app !== app || volume.state === 'destroyed')
    throw flapsError('FLAPS_ERR_VOLUME_NOT_FOUND', `volume ${id} not found in app ${app}`);
  return volume;
}

/** The worker that holds a volume, or 503 when it is unknown. */
export async function volumeWorker(state: FleetState, volume: VolumeRow): Promise<WorkerHost> {
  const host = await state.worker(volume.host_id);
  if (!host?.flyd_addr)
    throw flapsError(
      'FLAPS_ERR_WORKER_UNREACHABLE',
      `volume ${volume.id}: its worker ${volume.host_id} is unknown`,
    );
  return host;
}

/**
 * The worker a new machine must go to because it mounts a volume: the volume's. Refused with
 * Fly-shaped errors: an unknown volume (404), one attached to another machine (412), one outside
 * the requested region (400). Undefined when the config mounts nothing.
 */
export async function mountedVolumeHost(
  state: FleetState,
  app: string,
  config: Record<string, unknown>,
  region: string | undefined,
): Promise<string | undefined> {
  if (config.mounts === undefined) return undefined;
  if (!Array.isArray(config.mounts))
    throw flapsError('FLAPS_ERR_BAD_REQUEST', 'config.mounts must be an array');
  const mounts = config.mounts as MountConfig[];
  const [mount] = mounts;
  if (mount === undefined) return undefined;
  if (mounts.length > 1)
    throw flapsError('FLAPS_ERR_BAD_REQUEST', 'config.mounts: a machine mounts one volume at most');
  const { volume: id, path } = mount;
  if (typeof id !== 'string' || typeof path !== 'string')
    throw flapsError('FLAPS_ERR_BAD_REQUEST', 'config.mounts[0] needs volume and path');
  const volume = await appVolume(state, app, id);
  if (volume.attached_machine_id) {
    throw flapsError(
      'FLAPS_ERR_VOLUME_ATTACHED',
      `failed_precondition: volume ${id} is attached to machine ${volume.attached_machine_id}`,
    );
  }
  const allowed = regionsOf(region);
  if (allowed && !allowed.has(volume.region)) {
    throw flapsError(
      'FLAPS_ERR_VOLUME_REGION',
      `volume ${id} is in region ${volume.region}, not in ${region}: create the machine in ${volume.region}`,
    );
  }
  return volume.host_id;
}

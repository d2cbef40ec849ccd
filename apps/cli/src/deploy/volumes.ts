import type { FlapsClient, Machine, Volume } from '@fleet/flaps-client';

/** A machine config's mount (Fly's `mounts[]` item): one volume per machine. */
export interface MachineMount {
  volume: string;
  path: string;
  name?: string;
}

/** What a new machine's volume is: its name, where the machine sees it, its size. */
export interface VolumeSpec {
  name: string;
  path: string;
  sizeGb: number;
}

/** The volume a machine config mounts, if any. */
export function mountedVolume(config: Record<string, unknown>): MachineMount | undefined {
  return ((config.mounts as MachineMount[] | undefined) ?? [])[0];
}

export function withMount(
  config: Record<string, unknown>,
  mount: MachineMount,
): Record<string, unknown> {
  return { ...config, mounts: [mount] };
}

/** Volumes this run gave a machine: the app's list may not show them attached yet. */
const claimed = new Set<string>();

/**
 * An existing volume of the mount's name that no machine has (in `region`, when one is asked):
 * the one `fleet volumes create` made before the first deploy, as Fly's guide has it, or one
 * restored from a snapshot. The oldest first.
 */
async function spareVolume(
  flaps: FlapsClient,
  app: string,
  name: string,
  region: string | undefined,
): Promise<Volume | undefined> {
  return (await flaps.listVolumes(app))
    .filter(
      (volume) =>
        volume.name === name &&
        volume.state === 'created' &&
        !volume.attached_machine_id &&
        !claimed.has(volume.id) &&
        (region === undefined || volume.region === region),
    )
    .sort((a, b) => a.created_at.localeCompare(b.created_at))[0];
}

/**
 * Creates a machine of `config` on a volume of its own, as flyctl does for `[mounts]`: an
 * unattached volume of the mount's name if the app has one, else a new one in `region` on a
 * worker with room for the machine (flaps' `compute`); then the machine, which flaps places on
 * the volume's worker. A machine that cannot be created leaves no new volume behind (a volume
 * that was there stays).
 */
export async function createWithVolume(
  flaps: FlapsClient,
  app: string,
  spec: VolumeSpec,
  region: string | undefined,
  config: Record<string, unknown>,
): Promise<Machine> {
  const spare = await spareVolume(flaps, app, spec.name, region);
  const volume =
    spare ??
    (await flaps.createVolume(app, {
      name: spec.name,
      size_gb: spec.sizeGb,
      ...(region === undefined ? {} : { region }),
      ...(config.guest === undefined ? {} : { compute: config.guest }),
    }));
  claimed.add(volume.id);
  try {
    return await flaps.createMachine(app, {
      region: volume.region,
      config: withMount(config, { volume: volume.id, path: spec.path, name: spec.name }),
    });
  } catch (error) {
    // The create's error is the one to report; a volume that cannot go either is listed by
    // `fleet volumes list` and can be destroyed by hand.
    if (!spare) await flaps.destroyVolume(app, volume.id).catch(() => undefined);
    throw error;
  }
}

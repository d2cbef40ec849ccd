import type { FlapsClient, Machine } from '@fleet/flaps-client';

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

/**
 * Creates a machine of `config` on a new volume of its own, as flyctl does for `[mounts]`: the
 * volume first, in `region`, on a worker with room for the machine (flaps' `compute`), then the
 * machine, which flaps places on the volume's worker. A machine that cannot be created leaves no
 * volume behind.
 */
export async function createWithVolume(
  flaps: FlapsClient,
  app: string,
  spec: VolumeSpec,
  region: string | undefined,
  config: Record<string, unknown>,
): Promise<Machine> {
  const volume = await flaps.createVolume(app, {
    name: spec.name,
    size_gb: spec.sizeGb,
    ...(region === undefined ? {} : { region }),
    ...(config.guest === undefined ? {} : { compute: config.guest }),
  });
  try {
    return await flaps.createMachine(app, {
      region: volume.region,
      config: withMount(config, { volume: volume.id, path: spec.path, name: spec.name }),
    });
  } catch (error) {
    // The create's error is the one to report; a volume that cannot go either is listed by
    // `fleet volumes list` and can be destroyed by hand.
    await flaps.destroyVolume(app, volume.id).catch(() => undefined);
    throw error;
  }
}

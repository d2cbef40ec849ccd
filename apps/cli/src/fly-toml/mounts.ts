import { CliError, exitCodes } from '../errors.js';
import { megabytes } from './machine-config.js';
import type { FlyToml } from './types.js';

/** What `[mounts]` asks for: a volume per machine, named `source`, at `destination`. */
export interface MountSpec {
  source: string;
  destination: string;
  /** The size a new volume gets (`initial_size`, whole gigabytes, at least 1; default 1). */
  sizeGb: number;
}

/**
 * The fly.toml's `[mounts]`, or undefined. Fly's `[[mounts]]` per process group is one mount
 * here: Fleet runs one process group, and a machine mounts one volume.
 */
export function mountOf(config: FlyToml): MountSpec | undefined {
  const mounts = [config.mounts ?? []].flat();
  const [mount] = mounts;
  if (mount === undefined) return undefined;
  if (mounts.length > 1)
    throw new CliError(
      `fly.toml has ${mounts.length} [[mounts]]: a machine mounts one volume`,
      exitCodes.usage,
    );
  const sizeMb = mount.initial_size === undefined ? 1024 : megabytes(mount.initial_size);
  return {
    source: mount.source,
    destination: mount.destination,
    sizeGb: Math.max(1, Math.ceil(sizeMb / 1024)),
  };
}

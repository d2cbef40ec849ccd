import { join, normalize } from 'node:path';
import { flydError } from '../errors.js';
import type { MachineConfig } from '../machines/machine-store.js';

/** A machine config's mount, as Fly's clients send it. */
export interface MountConfig {
  volume: string;
  path: string;
  name?: string;
}

/** The volume a machine config mounts (one at most), if any. */
export function mountOf(config: MachineConfig): MountConfig | undefined {
  return (config.mounts as MountConfig[] | undefined)?.[0];
}

/** Where a mount path appears inside a machine's folder; a path that leaves it is refused. */
export function mountLink(machineDir: string, path: string): string {
  const relative = normalize(path).replace(/^\/+/, '');
  if (relative === '' || relative === '.' || relative.startsWith('..')) {
    throw flydError(
      'FLYD_ERR_BAD_CONFIG',
      `config.mounts[0].path ${JSON.stringify(path)} must name a folder like /data`,
    );
  }
  return join(machineDir, relative);
}

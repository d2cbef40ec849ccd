import { join } from 'node:path';
import type { MachineRecord } from './machine-store.js';

/** What a machine's environment is made of besides its record. */
export interface EnvironmentParts {
  /** The machine's root: its working directory and HOME. */
  root: string;
  /** The port its service listens on, when it has one. */
  port: number | null;
  hostId: string;
  /** What the image's image.json sets (empty when the image cannot be read: launch says why). */
  imageEnv: Record<string, string>;
  /** Where its volume is mounted (see volumes/mounts.ts). */
  mountEnv: Record<string, string>;
  /** The app's secrets, opened for this launch or exec (app-secrets.ts). */
  secrets: Record<string, string>;
}

/**
 * The environment a machine's processes get (its own and `exec`'s): clean, then the image's, the
 * config's own `env`, the app's secrets, the mount's, and Fly's variables last, so no config can
 * fake its identity.
 */
export function machineEnv(
  machine: MachineRecord,
  parts: EnvironmentParts,
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: parts.root,
    // Temporary files in its root too (bounded by its disk), for the programs that ask TMPDIR.
    TMPDIR: join(parts.root, 'tmp'),
    LANG: process.env.LANG ?? 'C.UTF-8',
    ...parts.imageEnv,
    ...(machine.config.env ?? {}),
    ...parts.secrets, // over the config's env, as on Fly; under Fly's own variables
    ...parts.mountEnv,
    ...(parts.port === null ? {} : { PORT: String(parts.port) }),
    FLY_APP_NAME: machine.app,
    FLY_MACHINE_ID: machine.id,
    FLY_REGION: machine.region,
    FLY_IMAGE_REF: machine.image_ref,
    FLY_PRIVATE_IP: machine.ip ?? '127.0.0.1',
    FLEET_HOST_ID: parts.hostId,
  };
}

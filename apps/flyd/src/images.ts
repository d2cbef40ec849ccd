import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { flydError } from './errors.js';
import type { MachineConfig } from './machine-store.js';

export interface ResolvedImage {
  /** `name:tag` as given (tag `latest` when left out). */
  ref: string;
  /** The folder the machine runs in (the image's files). */
  dir: string;
  cmd: string[];
}

/**
 * The local image store: `<imagesDir>/<name>/image.json` gives the command, the folder holds its
 * files. `init.exec` (or `init.entrypoint` + `init.cmd`) in the config overrides the command.
 */
export function resolveImage(imagesDir: string, config: MachineConfig): ResolvedImage {
  if (typeof config.image !== 'string' || config.image === '') {
    throw flydError('FLYD_ERR_BAD_CONFIG', 'config.image is required');
  }
  const [name, tag = 'latest'] = config.image.split(':');
  if (!name || !/^[a-z0-9][a-z0-9._-]*$/.test(name)) {
    throw flydError(
      'FLYD_ERR_BAD_CONFIG',
      `config.image ${JSON.stringify(config.image)} is not an image name`,
    );
  }
  const dir = join(imagesDir, name);
  const manifest = join(dir, 'image.json');
  if (!existsSync(manifest))
    throw flydError('FLYD_ERR_BAD_CONFIG', `config.image: unknown image ${name}`);
  const image = JSON.parse(readFileSync(manifest, 'utf8')) as { cmd?: unknown };
  const override =
    config.init?.exec ??
    (config.init?.cmd ? [...(config.init.entrypoint ?? []), ...config.init.cmd] : undefined);
  const cmd = override ?? image.cmd;
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((part) => typeof part === 'string')) {
    throw flydError(
      'FLYD_ERR_BAD_CONFIG',
      `config.init.exec: image ${name} has no command to run, and the config gives none`,
    );
  }
  return { ref: `${name}:${tag}`, dir, cmd: cmd as string[] };
}

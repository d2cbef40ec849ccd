import { dirname, resolve } from 'node:path';
import type { FlapsClient } from '@fleet/flaps-client';
import { ImageError, packImage } from '@fleet/images';
import { CliError, exitCodes } from '../errors.js';
import type { Progress } from './deploy.js';

/**
 * Builds a deploy's image from a folder — `[build] dir`, relative to the fly.toml, else the
 * fly.toml's own folder — as `@fleet/images` packs it (its `image.json` names the command), and
 * uploads it to the app tagged `<app>:deployment-<digest>`. Answers the pinned reference
 * (`<app>@sha256:...`), so every machine of the release runs exactly these files.
 */
export async function buildImage(
  flaps: FlapsClient,
  app: string,
  flyToml: string,
  dir: string | undefined,
  say: Progress,
): Promise<string> {
  const folder = resolve(dirname(flyToml), dir ?? '.');
  let image: Awaited<ReturnType<typeof packImage>>;
  try {
    image = await packImage(folder);
  } catch (error) {
    if (error instanceof ImageError)
      throw new CliError(`cannot pack ${folder} as an image: ${error.message}`, exitCodes.usage);
    throw error;
  }
  const short = image.digest.slice('sha256:'.length, 'sha256:'.length + 12);
  say(`built ${folder} into ${image.digest} (${image.archive.length} bytes), uploading`);
  await flaps.uploadImage(app, image.archive, {
    tag: `${app}:deployment-${short}`,
    digest: image.digest,
  });
  return `${app}@${image.digest}`;
}

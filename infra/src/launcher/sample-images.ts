import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FlapsClient } from '@fleet/flaps-client';
import { packImage } from '@fleet/images';

/**
 * Packs every folder of `imagesDir` (packages/sample-images/images) and uploads it to `app` as `<name>:latest`.
 * Idempotent: the same files pack to the same digest, which flaps keeps once. Resolves with each
 * image's pinned reference by name (`hello` → `hello@sha256:...`).
 */
export async function uploadSampleImages(
  flaps: FlapsClient,
  app: string,
  imagesDir: string,
): Promise<Map<string, string>> {
  const pinned = new Map<string, string>();
  const names = readdirSync(imagesDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  for (const name of names) {
    const image = await packImage(join(imagesDir, name));
    await flaps.uploadImage(app, image.archive, { tag: `${name}:latest`, digest: image.digest });
    pinned.set(name, `${name}@${image.digest}`);
  }
  return pinned;
}

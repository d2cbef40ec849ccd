import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { packImage } from '@fleet/images';
import { request } from 'undici';

/** Bound on one upload (the sample images are a few KB). */
const uploadTimeoutMs = 30_000;

/**
 * Packs every folder of `imagesDir` (infra/images) and uploads it to `app` as `<name>:latest`.
 * Idempotent: the same files pack to the same digest, which flaps keeps once. Resolves with each
 * image's pinned reference by name (`hello` → `hello@sha256:...`). The upload is Fleet's own
 * images route, not in the Machines API client, so it is called here.
 */
export async function uploadSampleImages(
  flapsUrl: string,
  apiToken: string,
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
    const query = new URLSearchParams({ tag: `${name}:latest`, digest: image.digest });
    const response = await request(`${flapsUrl}/v1/apps/${app}/images?${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/gzip' },
      body: image.archive,
      headersTimeout: uploadTimeoutMs,
      bodyTimeout: uploadTimeoutMs,
    });
    const text = await response.body.text();
    if (response.statusCode !== 200 && response.statusCode !== 201) {
      throw new Error(`uploading image ${name}: flaps answered ${response.statusCode} ${text}`);
    }
    pinned.set(name, `${name}@${image.digest}`);
  }
  return pinned;
}

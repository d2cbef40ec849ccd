import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverMain as mainOf } from '@fleet/service';

/** The Fleet servers the launcher runs, by workspace package name. */
export type ServerName = 'corrosion' | 'flyd' | 'flaps' | 'fly-proxy';

/**
 * Path of an app's built entry point. The launcher runs apps as processes and never imports
 * them, so it only resolves where their `dist/main.js` is.
 */
export function serverMain(name: ServerName): string {
  return mainOf(`@fleet/${name}`);
}

/** The repository root (infra/dist/launcher → ../../..), where `.fleet/` lives by default. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The sample machine images (@fleet/sample-images). */
export { sampleImagesDir as imagesDir } from '@fleet/sample-images';

import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** The Fleet servers the launcher runs, by workspace package name. */
export type ServerName = 'corrosion' | 'flyd' | 'flaps' | 'fly-proxy';

/**
 * Path of an app's built entry point. The launcher runs apps as processes and never imports
 * them, so it only resolves where their `dist/main.js` is.
 */
export function serverMain(name: ServerName): string {
  const manifest = require.resolve(`@fleet/${name}/package.json`);
  return join(dirname(manifest), 'dist', 'main.js');
}

/** The repository root (infra/dist/launcher → ../../..), where `.fleet/` lives by default. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The sample machine images shipped in infra/images. */
export const imagesDir = join(repoRoot, 'infra', 'images');

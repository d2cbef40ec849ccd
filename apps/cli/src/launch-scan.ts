import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { manifestFile } from '@fleet/images';
import { CliError, exitCodes } from './errors.js';

/** The image.json `fleet launch` writes for a folder that has none, and what it found. */
export interface ScannedManifest {
  text: string;
  found: string;
  /** What will keep it from running, said before the deploy: its dependencies not installed. */
  warning?: string;
}

/**
 * What runs a folder that has no image.json, as flyctl's scanners find a framework and write its
 * Dockerfile: a Node app's package.json — its `start` script (`npm run start`, flyctl's command),
 * else its `main` file. Undefined when the folder has its own image.json; a clear error when
 * nothing says how to run it (never a stand-in that would deploy something else under the app's
 * name).
 */
export function scanFolder(folder: string): ScannedManifest | undefined {
  if (existsSync(join(folder, manifestFile))) return undefined;
  const cmd = nodeCommand(folder);
  if (cmd === undefined)
    throw new CliError(
      `nothing here says how to run the app: ${folder} has no ${manifestFile} (e.g. {"cmd": ["node", "server.js"]}, the command its image runs) and no package.json with a start script or a main file; write one, or run a prebuilt image with --image (hello is the demo's)`,
      exitCodes.usage,
    );
  return {
    text: `${JSON.stringify({ cmd: cmd.argv }, null, 2)}\n`,
    found: `a Node app (package.json's ${cmd.from})`,
    ...(cmd.uninstalled
      ? {
          warning: `package.json names dependencies but ${folder} has no node_modules: the folder is the image, so run \`npm install\` first (flyctl's Dockerfile would)`,
        }
      : {}),
  };
}

function nodeCommand(
  folder: string,
): { argv: string[]; from: string; uninstalled: boolean } | undefined {
  const file = join(folder, 'package.json');
  if (!existsSync(file)) return undefined;
  let pkg: { scripts?: { start?: unknown }; main?: unknown; dependencies?: object };
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CliError(`${file} is not JSON: ${(error as Error).message}`, exitCodes.usage);
  }
  const uninstalled =
    Object.keys(pkg.dependencies ?? {}).length > 0 && !existsSync(join(folder, 'node_modules'));
  if (typeof pkg.scripts?.start === 'string' && pkg.scripts.start.trim() !== '')
    return { argv: ['npm', 'run', 'start'], from: 'start script', uninstalled };
  if (typeof pkg.main === 'string' && existsSync(join(folder, pkg.main)))
    return { argv: ['node', pkg.main], from: `main, ${pkg.main}`, uninstalled };
  return undefined;
}

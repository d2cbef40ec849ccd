import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { nodeProjectAbove } from '@fleet/service';

/**
 * Where a local fleet's flyd keeping its data in `dataDir` puts machine roots when not in it: a
 * folder of the temporary directory named after `dataDir`, the same at every start, so that flyd
 * finds and removes the roots of machines it no longer has (a `.fleet/` deleted, say).
 */
export function outsideRootsDir(dataDir: string): string {
  const name = createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16);
  return join(tmpdir(), `fleet-roots-${name}`);
}

/**
 * flyd's `--roots-dir` for a local fleet: none (flyd's default, roots/ in its data directory)
 * unless that lies inside a Node project — as `npm start`'s `.fleet/` in the checkout always
 * does. A machine's Node code there would see the checkout's package.json (`"type": "module"`:
 * a CommonJS server.js fails to load) and node_modules (an import the image lacks resolves here
 * and fails on a worker), so its roots go outside (`outsideRootsDir`). Roots are ephemeral: each
 * run starts afresh from the image, so nothing is lost by keeping them in the temporary directory.
 */
export function localRootsDir(dataDir: string): string[] {
  if (nodeProjectAbove(dataDir) === undefined) return [];
  return ['--roots-dir', outsideRootsDir(dataDir)];
}

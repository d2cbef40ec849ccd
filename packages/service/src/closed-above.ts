import { realpathSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * The first folder above `path` that does not let other users through (no `o+x`), or undefined
 * when every one does. Both the path as given (a link is judged by its folder) and the real path
 * it leads to are walked: a machine that runs as a user of its own reaches its root and volume
 * under flyd's data directory by absolute paths, through every folder above it. `path` must exist.
 */
export function closedAbove(path: string): string | undefined {
  for (const start of [resolve(path), realpathSync(path)]) {
    for (let dir = dirname(start); ; dir = dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) return dir;
      if (dir === dirname(dir)) break;
    }
  }
  return undefined;
}

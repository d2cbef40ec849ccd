import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The files under `dir` whose bytes contain `needle` (a secret that must be on no disk): every
 * plain file, not the disk images (`.ext4`, whose files are searched through their mounts) nor
 * what is mounted on a file (a network namespace flyd keeps, which cannot be read). For tests:
 * the `@fleet/service/vitest-files-holding` subpath.
 */
export function filesHolding(dir: string, needle: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((entry) => join(dir, entry))
    .filter((path) => !path.endsWith('.ext4'))
    .filter((path) => {
      const stat = statSync(path, { throwIfNoEntry: false });
      return stat?.isFile() === true && stat.dev === statSync(dirname(path)).dev;
    })
    .filter((path) => readFileSync(path).includes(needle));
}

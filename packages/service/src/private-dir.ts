import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Makes `dir` its owner's alone (0700), also when it was there before with a wider mode: on a
 * worker, machines run as users of their own and must not read a server's state. The folders
 * made above it keep the usual mode: machines may need to pass through them (flyd's data
 * directory can be a sibling). The folder is made 0700, never wider for a moment.
 */
export function privateDir(dir: string): string {
  mkdirSync(dirname(dir), { recursive: true });
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  chmodSync(dir, 0o700);
  return dir;
}

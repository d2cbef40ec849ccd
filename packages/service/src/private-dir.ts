import { chmodSync, mkdirSync } from 'node:fs';

/**
 * Makes `dir` (and what is missing above it) and leaves it its owner's alone (0700), also when
 * it was there before with a wider mode: on a worker, machines run as users of their own and
 * must not read a server's state.
 */
export function privateDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

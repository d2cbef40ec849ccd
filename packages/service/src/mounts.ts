import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * The mount points of this process's mount namespace at or under `dir`, deepest first (the order
 * they can be unmounted in). Read from `/proc/self/mountinfo`, whose paths escape space, tab,
 * newline and backslash in octal.
 */
export function mountsUnder(dir: string): string[] {
  const root = resolve(dir);
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return []; // not Linux: nothing flyd mounts
  }
  return info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((field): field is string => field !== undefined)
    .map((field) =>
      field.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8))),
    )
    .filter((path) => path === root || path.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Unmounts every filesystem mounted at or under `dir`, deepest first: what a flyd that was killed
 * (or left its machines running) kept mounted there, before the folder is removed. A mount still
 * busy is detached lazily (`umount -l`): gone from the tree now, freed when its last user is.
 */
export function unmountUnder(dir: string): void {
  for (const path of mountsUnder(dir)) {
    try {
      execFileSync('umount', [path], { stdio: 'ignore' });
    } catch {
      execFileSync('umount', ['-l', path], { stdio: 'ignore' });
    }
  }
}

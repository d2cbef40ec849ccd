import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Where the program `name` is: on PATH, else in the system's folders (a unit's PATH is short). */
export function findTool(name: string): string | undefined {
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/sbin',
    '/sbin',
    '/usr/bin',
    '/bin',
  ];
  for (const dir of dirs.filter(Boolean)) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Where each of `names` is, or the first one missing. */
export function findTools<Name extends string>(
  names: readonly Name[],
): { paths: Record<Name, string> } | { missing: Name } {
  const paths: Partial<Record<Name, string>> = {};
  for (const name of names) {
    const path = findTool(name);
    if (path === undefined) return { missing: name };
    paths[name] = path;
  }
  return { paths: paths as Record<Name, string> };
}

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** What makes a folder part of a Node project for the programs below it. */
const markers = ['package.json', 'node_modules'];

/**
 * The first `package.json` or `node_modules` in `path` or a folder above it, or undefined. Node
 * looks in every folder above a program for both — the nearest package.json decides whether its
 * `.js` files are CommonJS or ES modules, and a bare import resolves in any node_modules on the
 * way up — so a machine whose root lies inside a project runs differently from one on a worker.
 */
export function nodeProjectAbove(path: string): string | undefined {
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    for (const marker of markers) if (existsSync(join(dir, marker))) return join(dir, marker);
    if (dir === dirname(dir)) return undefined;
  }
}

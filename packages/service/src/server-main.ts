import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/**
 * The built entry point (`dist/main.js`) of a Fleet server, found by its package name
 * (`@fleet/corrosion`), never by a relative path into another workspace: whoever starts it (a
 * test, a bench, the launcher) declares that package among its dependencies.
 */
export function serverMain(packageName: string): string {
  return join(dirname(require.resolve(`${packageName}/package.json`)), 'dist', 'main.js');
}

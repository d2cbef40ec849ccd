import { fileURLToPath } from 'node:url';
import type { ViteUserConfig } from 'vitest/config';

/**
 * How a workspace's test files use the machine:
 * - `unit`: in-process tests; vitest's defaults.
 * - `processes`: each file starts real servers (corrosion, flyd, proxies) and spends most of its
 *   time waiting on them, so two files run at once even on two cores — with one worker per core
 *   less one (vitest's default), a two-core CI ran every file alone and the suite passed its
 *   15-minute bound. The tests carry no absolute timings, so the overlap only costs waiting.
 * - `fleet`: each file boots a whole fleet (namespaces, WAN, many processes): one at a time.
 */
export type TestWeight = 'unit' | 'processes' | 'fleet';

/** The vitest configuration of a Fleet workspace, by the weight of its tests. */
export function fleetTestConfig(weight: TestWeight): ViteUserConfig {
  // Every run's temporary files under one folder of its own, removed when the run ends.
  const globalSetup = [fileURLToPath(new URL('./vitest-temp-dir.js', import.meta.url))];
  if (weight === 'unit') return { test: { globalSetup } };
  if (weight === 'processes')
    return { test: { globalSetup, maxWorkers: 2, testTimeout: 30_000, hookTimeout: 30_000 } };
  return {
    test: { globalSetup, fileParallelism: false, testTimeout: 60_000, hookTimeout: 60_000 },
  };
}

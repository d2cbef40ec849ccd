import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The end-to-end tests boot whole fleets as processes: one file at a time, generous bounds.
export default defineConfig({
  test: {
    globalSetup: [fileURLToPath(import.meta.resolve('@fleet/service/vitest-temp-dir'))],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

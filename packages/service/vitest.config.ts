import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Its own module, as every other workspace uses it through @fleet/service/vitest-temp-dir.
    globalSetup: ['./src/vitest-temp-dir.ts'],
  },
});

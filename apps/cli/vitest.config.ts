import { fleetTestConfig } from '@fleet/service/vitest-config';
import { defineConfig } from 'vitest/config';

export default defineConfig(fleetTestConfig('unit'));

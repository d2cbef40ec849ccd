import { readFleetKeyFile } from './fleet-key.js';

/**
 * The `--fleet-key-file` setting (a `@fleet/service` config spec entry), the same for every
 * server that holds the fleet key; `use` says what this one does with it, and without it.
 */
export function fleetKeyFileSetting(use: string) {
  return {
    type: 'string',
    description: `the fleet key file (every host of the fleet holds the same): ${use}`,
  } as const;
}

/** The fleet key `--fleet-key-file` names, read now; undefined when the flag was not given. */
export function fleetKeyOfFlag(path: string | undefined): Buffer | undefined {
  return path === undefined ? undefined : readFleetKeyFile(path);
}

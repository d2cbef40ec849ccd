import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Fleet, type FleetOptions, startFleet } from '../src/launcher/fleet.js';

/**
 * A one-host fleet on ephemeral ports as the tests start it: host `<name>-host` of region
 * `local`, domain `fleet.test`, its state in a new temporary folder unless `options` give one
 * (and anything else `options` say instead).
 */
export function startTestFleet(name: string, options: Partial<FleetOptions> = {}): Promise<Fleet> {
  return startFleet({
    stateDir: options.stateDir ?? mkdtempSync(join(tmpdir(), `fleet-${name}-`)),
    hostId: `${name}-host`,
    region: 'local',
    proxyListen: '127.0.0.1:0',
    apiListen: '127.0.0.1:0',
    domain: 'fleet.test',
    startTimeoutMs: 30_000,
    ...options,
  });
}

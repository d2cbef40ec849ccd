import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Shared secrets of a local fleet, generated once and kept in `<state>/secrets.json` (0600). */
export interface FleetSecrets {
  /** Bearer token of the public Machines API (flaps). */
  apiToken: string;
  /** Internal token flaps presents to flyd. */
  flydToken: string;
}

export function loadOrCreateSecrets(stateDir: string): FleetSecrets {
  const file = join(stateDir, 'secrets.json');
  if (existsSync(file)) {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Partial<FleetSecrets>;
    if (typeof stored.apiToken === 'string' && typeof stored.flydToken === 'string') {
      return { apiToken: stored.apiToken, flydToken: stored.flydToken };
    }
  }
  const secrets: FleetSecrets = {
    apiToken: randomBytes(24).toString('hex'),
    flydToken: randomBytes(24).toString('hex'),
  };
  writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return secrets;
}

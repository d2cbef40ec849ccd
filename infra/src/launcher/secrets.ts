import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Shared secrets of a local fleet, generated once and kept in `<state>/secrets.json` (0600). */
export interface FleetSecrets {
  /** Bearer token of the public Machines API (flaps). */
  apiToken: string;
  /** Internal token flaps presents to flyd. */
  flydToken: string;
  /** Bearer token of the corrosion agent's API (every server presents it). */
  corrosionToken: string;
}

const newToken = () => randomBytes(24).toString('hex');

/** The fleet's secrets, keeping those already stored and generating any that are missing. */
export function loadOrCreateSecrets(stateDir: string): FleetSecrets {
  const file = join(stateDir, 'secrets.json');
  const stored: Partial<Record<keyof FleetSecrets, unknown>> = existsSync(file)
    ? JSON.parse(readFileSync(file, 'utf8'))
    : {};
  const keep = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  const secrets: FleetSecrets = {
    apiToken: keep(stored.apiToken) ?? newToken(),
    flydToken: keep(stored.flydToken) ?? newToken(),
    corrosionToken: keep(stored.corrosionToken) ?? newToken(),
  };
  if (Object.entries(secrets).some(([key, value]) => stored[key as keyof FleetSecrets] !== value))
    writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return secrets;
}

/**
 * The fleet key every host holds (gossip MACs, backhaul tokens, sealed secrets): 32 random
 * bytes, made once in `<state>/fleet.key` (0600); its path.
 */
export function fleetKeyFile(stateDir: string): string {
  const file = join(stateDir, 'fleet.key');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return file;
}

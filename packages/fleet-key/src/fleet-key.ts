import { readFileSync } from 'node:fs';
import { FleetKeyError } from './errors.js';

/** Fewer bytes than this is refused, as corrosion refuses it for gossip. */
export const fleetKeyBytesMin = 16;

/**
 * Reads the fleet key the way corrosion reads `--gossip-key-file`: the file's text, trimmed, as
 * UTF-8 bytes. Every host of a fleet holds the same file, so every edge can open what another
 * sealed. The key itself never appears in an error or a log.
 */
export function readFleetKeyFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new FleetKeyError('FLEET_KEY_ERR_FILE', `cannot read the fleet key file ${path}`, {
      cause: error,
    });
  }
  const key = Buffer.from(text.trim(), 'utf8');
  if (key.length < fleetKeyBytesMin) {
    throw new FleetKeyError(
      'FLEET_KEY_ERR_FILE',
      `the fleet key in ${path} has ${key.length} bytes; at least ${fleetKeyBytesMin} are needed`,
    );
  }
  return key;
}

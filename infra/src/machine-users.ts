import { mkdirSync } from 'node:fs';
import { closedAbove } from '@fleet/service';

/**
 * flyd's `--machine-users` for a local fleet keeping flyd's data in `dataDir`: flyd's default
 * (`auto`: a user of its own per machine) unless, as root, a folder above `dataDir` is closed to
 * other users — a checkout under `/root`, say. flyd then refuses `auto` rather than run tenants
 * as root unasked; a fleet on one's own machine may, so it asks for that (`off`) and says why on
 * stderr, naming the fix.
 */
export function localMachineUsers(dataDir: string): string[] {
  if (process.geteuid?.() !== 0) return []; // flyd runs machines as this same user, unprivileged
  mkdirSync(dataDir, { recursive: true });
  const closed = closedAbove(dataDir);
  if (closed === undefined) return [];
  process.stderr.write(
    `warning: machines run as root: ${closed} does not let other users through, so they cannot have users of their own (chmod o+x ${closed}, or keep the fleet's state elsewhere, to isolate them)\n`,
  );
  return ['--machine-users', 'off'];
}

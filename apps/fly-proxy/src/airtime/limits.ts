import { present } from '@fleet/service/invariant';
import type { HostLimits } from './host-budget.js';

/** A token bucket's shape for one app. */
export interface AppLimit {
  bytesPerSecond: number;
  burstBytes: number;
}

/** Everything Airtime is configured with (see the README's "Airtime" for the flags). */
export interface AirtimeLimits {
  host: HostLimits;
  /** Every app's bucket unless overridden. */
  app: AppLimit;
  /** Per-app buckets, by app name. */
  overrides: ReadonlyMap<string, AppLimit>;
  /** Requests (and raw TCP connections) of one app in flight at once; past it 503. */
  appRequestsMax: number;
  /** A forced second instance (seed 004): every app capped low, whatever else is configured. */
  strict?: { bytesPerSecond: number; requestsMax: number; holder: string };
  /** Where `stat` and `net/dev` are read from (`/proc`; a fixture folder in tests). */
  procRoot: string;
  sampleIntervalMs: number;
}

export class AirtimeConfigError extends Error {}

/** Overrides are app names as the catalog knows them: DNS labels. */
const appName = /^[a-z0-9][a-z0-9-]{0,62}$/;
const overridesMax = 10_000;

/**
 * `--airtime-app-overrides`: `app=bytesPerSecond[:burstBytes]`, comma-separated (a burst left
 * out is one second of the rate). Throws AirtimeConfigError naming the bad entry.
 */
export function parseOverrides(text: string): Map<string, AppLimit> {
  const overrides = new Map<string, AppLimit>();
  if (text.trim() === '') return overrides;
  for (const entry of text.split(',')) {
    const match = /^\s*([^=\s]+)=(\d+)(?::(\d+))?\s*$/.exec(entry);
    if (match === null)
      throw new AirtimeConfigError(
        `--airtime-app-overrides: "${entry}" is not app=bytesPerSecond[:burstBytes]`,
      );
    const [, , rate, burst] = match;
    const app = present(match[1], "an override's app (the pattern's first group always matches)");
    if (!appName.test(app))
      throw new AirtimeConfigError(`--airtime-app-overrides: "${app}" is not an app name`);
    const bytesPerSecond = Number(rate);
    const burstBytes = burst === undefined ? bytesPerSecond : Number(burst);
    if (
      bytesPerSecond < 1024 ||
      burstBytes < 1024 ||
      !Number.isSafeInteger(bytesPerSecond + burstBytes)
    )
      throw new AirtimeConfigError(
        `--airtime-app-overrides: ${app}'s rate and burst must be from 1024 bytes, got "${entry.trim()}"`,
      );
    if (overrides.has(app))
      throw new AirtimeConfigError(`--airtime-app-overrides: ${app} is given twice`);
    overrides.set(app, { bytesPerSecond, burstBytes });
  }
  if (overrides.size > overridesMax)
    throw new AirtimeConfigError(`--airtime-app-overrides: more than ${overridesMax} apps`);
  return overrides;
}

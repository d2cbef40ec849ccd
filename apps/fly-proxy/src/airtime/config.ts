import { UsageError } from '@fleet/service';
import { AirtimeConfigError, type AirtimeLimits, parseOverrides } from './limits.js';

const bytesMax = 1_000_000_000_000;

/**
 * Airtime's flags (fly-proxy's spec spreads these). The defaults never throttle a normal host:
 * a CPU ratio of 1 is never exceeded, 100 Gbit/s and 10 GiB/s per app are past what an edge moves.
 */
export const airtimeSpec = {
  'airtime-host-cpu-max': {
    type: 'number',
    integer: false,
    default: 1,
    min: 0.05,
    max: 1,
    description:
      'busy share of the host CPU (softirq included, from /proc/stat) above which the budget shrinks (1: never)',
  },
  'airtime-host-network-bytes-per-second': {
    type: 'number',
    default: 12_500_000_000,
    min: 1_024,
    max: bytesMax,
    description:
      "bytes per second on the host's interfaces (/proc/net/dev, in + out, all but lo) above which the budget shrinks",
  },
  'airtime-app-floor-bytes-per-second': {
    type: 'number',
    default: 65_536,
    min: 1_024,
    max: bytesMax,
    description: 'under host pressure no app is throttled below this',
  },
  'airtime-app-bytes-per-second': {
    type: 'number',
    default: 10_737_418_240,
    min: 1_024,
    max: bytesMax,
    description: 'rate of every app (bytes per second, both directions together)',
  },
  'airtime-app-burst-bytes': {
    type: 'number',
    default: 0,
    min: 0,
    max: bytesMax,
    description: 'bytes an idle app may move at once before its rate applies (0: one second of it)',
  },
  'airtime-app-requests-max': {
    type: 'number',
    default: 100_000,
    min: 1,
    max: 10_000_000,
    description: 'requests and raw TCP connections of one app in flight at once; past it 503',
  },
  'airtime-app-overrides': {
    type: 'string',
    default: '',
    description:
      'per-app rates: app=bytesPerSecond[:burstBytes],... (burst: one second of the rate)',
  },
  'airtime-proc-root': {
    type: 'string',
    default: '/proc',
    description:
      'where stat and net/dev are read (tests, and containers with the host /proc mounted elsewhere)',
  },
  'airtime-sample-interval-ms': {
    type: 'number',
    default: 1_000,
    min: 100,
    max: 60_000,
    description: "how often the host's load is sampled and the budget recomputed",
  },
  'strict-second-instance': {
    type: 'boolean',
    default: false,
    description:
      'when another proxy holds --state-dir, run beside it anyway with strict Airtime limits (see the README) instead of exiting',
  },
  'strict-app-requests-max': {
    type: 'number',
    default: 8,
    min: 1,
    max: 100_000,
    description:
      'strict second instance: requests and connections of one app in flight (past it 503)',
  },
  'strict-app-bytes-per-second': {
    type: 'number',
    default: 1_048_576,
    min: 1_024,
    max: 10_737_418_240,
    description:
      'strict second instance: bytes one app may move per second (HTTP/1.1, HTTP/2, raw TCP)',
  },
} as const;

type AirtimeConfig = {
  [Key in keyof typeof airtimeSpec]: (typeof airtimeSpec)[Key] extends { type: 'number' }
    ? number
    : (typeof airtimeSpec)[Key] extends { type: 'boolean' }
      ? boolean
      : string;
};

/** The limits the flags say; `strictHolder` when forced beside the active proxy. */
export function airtimeLimits(
  config: AirtimeConfig,
  strictHolder: string | undefined,
): AirtimeLimits {
  let overrides: AirtimeLimits['overrides'];
  try {
    overrides = parseOverrides(config['airtime-app-overrides']);
  } catch (error) {
    if (error instanceof AirtimeConfigError) throw new UsageError(error.message);
    throw error;
  }
  if (config['airtime-proc-root'] === '')
    throw new UsageError('--airtime-proc-root must name a folder (/proc on a host)');
  const rate = config['airtime-app-bytes-per-second'];
  const burst = config['airtime-app-burst-bytes'];
  return {
    host: {
      cpuBusyRatioMax: config['airtime-host-cpu-max'],
      networkBytesPerSecondMax: config['airtime-host-network-bytes-per-second'],
      appFloorBytesPerSecond: config['airtime-app-floor-bytes-per-second'],
    },
    app: { bytesPerSecond: rate, burstBytes: burst === 0 ? rate : burst },
    overrides,
    appRequestsMax: config['airtime-app-requests-max'],
    strict:
      strictHolder === undefined
        ? undefined
        : {
            bytesPerSecond: config['strict-app-bytes-per-second'],
            requestsMax: config['strict-app-requests-max'],
            holder: strictHolder,
          },
    procRoot: config['airtime-proc-root'],
    sampleIntervalMs: config['airtime-sample-interval-ms'],
  };
}

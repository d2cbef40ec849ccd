#!/usr/bin/env node
import { Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CorrosionClient } from '@fleet/corrosion-client';
import { fleetKeyFileSetting, fleetKeyOfFlag } from '@fleet/fleet-key';
import { FlydClient } from '@fleet/flyd-client';
import {
  createLogger,
  httpLimits,
  httpLimitsSpec,
  listenHttp,
  onShutdown,
  parseConfig,
  readSecret,
  runMain,
  startMetrics,
} from '@fleet/service';
import { HostLiveness } from './host-liveness.js';
import { ImageBlobs } from './image-blobs.js';
import { ImageRows } from './image-rows.js';
import { flapsMetrics } from './metrics.js';
import { SecretStore } from './secret-store.js';
import { createFlapsServer } from './server.js';
import { FleetState } from './state.js';
import { workerFailure } from './worker-errors.js';

const spec = {
  listen: {
    type: 'string',
    format: 'address',
    default: '127.0.0.1:4280',
    description: 'API listen address',
  },
  'corrosion-url': {
    type: 'string',
    format: 'url',
    required: true,
    description: 'base URL of the local corrosion API',
  },
  'corrosion-token-file': {
    type: 'string',
    description: 'file holding the bearer token of the corrosion API; or set CORROSION_TOKEN',
  },
  'token-file': {
    type: 'string',
    description:
      'file holding the API token clients present (Bearer or FlyV1); or set FLEET_API_TOKEN (one is required)',
  },
  'flyd-token-file': {
    type: 'string',
    description:
      'file holding the internal token flaps presents to flyd; or set FLYD_TOKEN (one is required)',
  },
  'request-timeout-ms': {
    type: 'number',
    default: 30_000,
    min: 100,
    max: 600_000,
    description: 'bound on each call to a worker',
  },
  'images-dir': {
    type: 'string',
    description:
      'where uploaded image archives are kept (sha256/<hex>.tar.gz); without it uploads and downloads answer 503',
  },
  'image-bytes-max': {
    type: 'number',
    default: 512 * 1024 * 1024,
    min: 1024,
    max: 64 * 1024 * 1024 * 1024,
    description: 'the largest image archive an upload may send (bytes)',
  },
  'fleet-key-file': fleetKeyFileSetting(
    'secrets are sealed with it before they are stored (without it, setting one answers 503)',
  ),
  'image-unpacked-bytes-max': {
    type: 'number',
    default: 2 * 1024 * 1024 * 1024,
    min: 1024,
    max: 256 * 1024 * 1024 * 1024,
    description: 'the most an uploaded image may unpack to (bytes)',
  },
  'host-liveness-interval-ms': {
    type: 'number',
    default: 1_000,
    min: 100,
    max: 60_000,
    description:
      "how often hosts' status is set from corrosion's SWIM view: down when a host's corrosion is dead, ready when it is back (0 members without gossip: nothing happens)",
  },
  ...httpLimitsSpec,
} as const;

/** How long connections accepted just before shutdown get to send their request. */
const acceptedGraceMs = 250;

runMain(async () => {
  const config = parseConfig(
    {
      name: 'flaps',
      summary: 'The Machines API: Fly-shaped /v1 apps and machines, placed on workers.',
    },
    spec,
  );
  if (!config) return;
  // flaps keeps no state on disk (corrosion holds it all): nothing of its own to lock. Its
  // listener is exclusive by itself, or handed over by systemd (socket activation).
  const token = readSecret({
    fileFlag: 'token-file',
    file: config['token-file'],
    variable: 'FLEET_API_TOKEN',
    required: true,
  });
  const flydToken = readSecret({
    fileFlag: 'flyd-token-file',
    file: config['flyd-token-file'],
    variable: 'FLYD_TOKEN',
    required: true,
  });
  const corrosionToken = readSecret({
    fileFlag: 'corrosion-token-file',
    file: config['corrosion-token-file'],
    variable: 'CORROSION_TOKEN',
  });
  const logger = createLogger('flaps');
  const metrics = startMetrics('flaps');
  const corrosion = new CorrosionClient({
    url: config['corrosion-url'],
    token: corrosionToken,
  });
  const flyd = new FlydClient({
    token: flydToken,
    timeoutMs: config['request-timeout-ms'],
    connections: 32,
    mapError: workerFailure,
  });
  const app = await createFlapsServer(
    logger,
    metrics,
    token,
    new FleetState(corrosion),
    flyd,
    httpLimits(config, 'FLAPS_ERR_OVERLOADED'),
    {
      rows: new ImageRows(corrosion),
      blobs:
        config['images-dir'] === undefined
          ? undefined
          : new ImageBlobs({
              dir: config['images-dir'],
              archiveBytesMax: config['image-bytes-max'],
              unpackLimits: {
                unpackedBytesMax: config['image-unpacked-bytes-max'],
                entriesMax: 100_000,
              },
            }),
      flydToken,
    },
    new SecretStore(corrosion, fleetKeyOfFlag(config['fleet-key-file'])),
  );
  const hostChanges = flapsMetrics().hostStatusChanges;
  const liveness = new HostLiveness({
    corrosion,
    corrosionUrl: config['corrosion-url'],
    corrosionToken,
    intervalMs: config['host-liveness-interval-ms'],
    logger,
    onChange: (_host, status) => hostChanges.add(1, { status }),
  });
  liveness.start();
  onShutdown(logger, async () => {
    await liveness.stop();
    // Stop accepting first, then give connections accepted an instant ago the time to send
    // their request: http.Server#close would drop them as idle, failing calls mid-restart
    // (seed 002). Under socket activation the next flaps accepts what is still queued.
    Server.prototype.close.call(app.server);
    await sleep(acceptedGraceMs);
    await app.close();
    await Promise.all([flyd.close(), corrosion.close()]);
    await metrics.shutdown();
  });
  await listenHttp(app, config.listen, 'api', { inherit: true });
});

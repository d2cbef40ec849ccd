#!/usr/bin/env node

import { join } from 'node:path';
import { FlapsClient } from '@fleet/flaps-client';
import { parseConfig, runMain, StateLockedError } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { loadTopologyFile, TopologyError } from '../topology/load.js';
import { ensureDemoApp, waitForProxy } from './demo.js';
import { type Fleet, startFleet } from './fleet.js';
import { shownPath, watchOutput, write } from './output.js';
import { imagesDir, repoRoot } from './paths.js';
import { uploadSampleImages } from './sample-images.js';
import { runTopology } from './topology-main.js';

const spec = {
  topology: {
    type: 'string',
    default: '',
    description:
      'a topology file (infra/topologies/*.json): with more than one host, the fleet runs on network namespaces joined by the emulated WAN',
  },
  'state-dir': {
    type: 'string',
    default: join(repoRoot, '.fleet'),
    description: 'where the fleet keeps its state',
  },
  'proxy-listen': {
    type: 'string',
    format: 'address',
    default: '127.0.0.1:8080',
    description: 'fly-proxy listener for user traffic',
  },
  'api-listen': {
    type: 'string',
    format: 'address',
    default: '127.0.0.1:4280',
    description: 'flaps (Machines API) listener',
  },
  domain: {
    type: 'string',
    default: 'localhost',
    description: 'fleet domain: <app>.<domain> reaches an app',
  },
  'host-id': { type: 'string', default: 'local-1', description: 'id of the one local host' },
  region: { type: 'string', default: 'local', description: 'region of the local host' },
  app: { type: 'string', default: 'demo', description: 'name of the demo app' },
  machines: {
    type: 'number',
    default: 2,
    min: 0,
    max: 64,
    description: 'how many demo machines to run',
  },
  image: {
    type: 'string',
    default: 'hello',
    description:
      'image of the demo machines: a folder of packages/sample-images/images (uploaded, run by its digest), or any image reference',
  },
  'start-timeout-ms': {
    type: 'number',
    default: 30_000,
    min: 1_000,
    max: 600_000,
    description: 'how long each server may take to start',
  },
} as const;

runMain(async () => {
  const config = parseConfig(
    {
      name: 'npm start',
      summary: 'Runs a local fleet (corrosion, flyd, flaps, fly-proxy) with a demo app.',
    },
    spec,
  );
  if (!config) return;
  const stateDir = config['state-dir'];
  let hostId = config['host-id'];
  let region = config.region;
  if (config.topology !== '') {
    const topology = loadTopology(config.topology);
    if (topology.hosts.length > 1) {
      await runTopology({
        topology,
        stateDir,
        domain: config.domain,
        app: config.app,
        image: config.image,
        startTimeoutMs: config['start-timeout-ms'],
      });
      return;
    }
    // One host: today's fleet on 127.0.0.1, named as the file says.
    const [only] = topology.hosts;
    hostId = present(only, 'the one host').id;
    region = present(only, 'the one host').region;
  }
  const logs = join(stateDir, hostId, 'logs');
  const fleet = await startFleet({
    stateDir,
    hostId,
    region,
    proxyListen: config['proxy-listen'],
    apiListen: config['api-listen'],
    domain: config.domain,
    startTimeoutMs: config['start-timeout-ms'],
  }).catch((error: Error) => {
    if (error instanceof StateLockedError) {
      alreadyRunning(stateDir, error);
      process.exit(1);
    }
    // A busy port is the usual cause: say so plainly, with where the full logs are.
    process.stderr.write(`the fleet could not start: ${error.message}\nlogs: ${logs}\n`);
    if (/EADDRINUSE/.test(error.message)) {
      process.stderr.write(
        'a port is taken (another program, or a fleet on another --state-dir?): pick others with --proxy-listen / --api-listen\n',
      );
    }
    process.exit(1);
  });
  stopOnHangUp(fleet);
  try {
    const flaps = new FlapsClient(fleet.urls.flaps, fleet.secrets.apiToken);
    if ((await flaps.getApp(config.app)) === undefined) await flaps.createApp(config.app);
    // packages/sample-images/images become uploaded images of the demo app (idempotent: same files, same digest).
    const pinned = await uploadSampleImages(flaps, config.app, imagesDir);
    await ensureDemoApp(flaps, {
      app: config.app,
      machineCount: config.machines,
      region,
      image: pinned.get(config.image) ?? config.image,
    });
    const host = `${config.app}.${config.domain}`;
    await waitForProxy(fleet.urls.proxy, host, (answer) => answer.status === 200);
    const demo = `http://${host}:${new URL(fleet.urls.proxy).port}/`;
    fleet.lock.describe({ urls: fleet.urls, demo });
    printWelcome(fleet.urls, host, demo, fleet.secrets.apiToken, shownPath(stateDir));
  } catch (error) {
    process.stderr.write(
      `the fleet started but the demo app did not come up: ${(error as Error).message}\n`,
    );
    process.stderr.write(`logs: ${logs}\n`);
    await fleet.stop();
    process.exit(1);
  }
});

/**
 * Stops the fleet, in order, on Ctrl-C (SIGINT), SIGTERM (what npm passes on when it is told
 * to stop), SIGHUP (the terminal closed) and when whoever reads the launcher's output is gone.
 * Should the launcher die without stopping them (kill -9), each server notices the pipe from it
 * closing and stops by itself.
 */
function stopOnHangUp(fleet: Fleet): void {
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    write('\nstopping the fleet...\n');
    await fleet.stop();
    write('stopped.\n');
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, shutdown);
  watchOutput(shutdown);
  // Any other way out (an uncaught error): ask the servers to stop; their pipe tells them too.
  process.on('exit', () => {
    for (const server of fleet.servers) server.child.kill('SIGTERM');
  });
}

/** The topology file, or a usage error (exit 2) naming each key at fault. */
function loadTopology(path: string) {
  try {
    return loadTopologyFile(path);
  } catch (error) {
    if (!(error instanceof TopologyError)) throw error;
    process.stderr.write(`--topology ${error.message}\n`);
    process.exit(2);
  }
}

/** What a second launcher on the same state directory says, changing nothing. */
function alreadyRunning(stateDir: string, error: StateLockedError): void {
  const holder = error.holder;
  const urls = holder?.urls as { flaps?: string; proxy?: string } | undefined;
  const lines = [
    `a fleet is already running on ${stateDir}` +
      (holder ? `: ${holder.name}, pid ${holder.pid}, since ${holder.since}` : '') +
      (error.path.endsWith('fleet.lock') ? '' : ` (${error.path} is still held)`),
    ...(typeof holder?.demo === 'string' ? [`  demo app      ${holder.demo}`] : []),
    ...(urls?.proxy ? [`  fly-proxy     ${urls.proxy}`] : []),
    ...(urls?.flaps ? [`  Machines API  ${urls.flaps}`] : []),
    `nothing was changed. Stop it first (Ctrl-C in its terminal${holder ? `, or kill ${holder.pid}` : ''}), or run another fleet with --state-dir and other ports.`,
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}

function printWelcome(
  urls: { proxy: string; flaps: string },
  host: string,
  demo: string,
  apiToken: string,
  stateDir: string,
): void {
  write(
    [
      '',
      'Fleet is up: corrosion, flyd, flaps and fly-proxy on this machine.',
      `  demo app      ${demo}`,
      `  try it        curl -s ${demo}`,
      `                curl -s -H 'Host: ${host}' ${urls.proxy}/`,
      `  Machines API  ${urls.flaps}   (token in ${stateDir}/secrets.json)`,
      `                curl -s -H 'Authorization: Bearer ${apiToken}' ${urls.flaps}/v1/apps/${host.split('.')[0]}/machines`,
      `  fleet CLI     npx fleet auth login --api-url ${urls.flaps} --token ${apiToken}`,
      `                npx fleet status -a ${host.split('.')[0]}`,
      `  state, logs   ${stateDir}/`,
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
}

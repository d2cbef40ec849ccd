#!/usr/bin/env node
import { join, relative } from 'node:path';
import { parseConfig, runMain } from '@fleet/service';
import { ensureDemoApp, waitForProxy } from './demo.js';
import { FlapsClient } from './flaps-client.js';
import { startFleet } from './fleet.js';
import { repoRoot } from './paths.js';

const spec = {
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
    description: 'image of the demo machines (infra/images)',
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
  const logs = join(stateDir, config['host-id'], 'logs');
  const fleet = await startFleet({
    stateDir,
    hostId: config['host-id'],
    region: config.region,
    proxyListen: config['proxy-listen'],
    apiListen: config['api-listen'],
    domain: config.domain,
    startTimeoutMs: config['start-timeout-ms'],
  }).catch((error: Error) => {
    // A busy port is the usual cause: say so plainly, with where the full logs are.
    process.stderr.write(`the fleet could not start: ${error.message}\nlogs: ${logs}\n`);
    if (/EADDRINUSE/.test(error.message)) {
      process.stderr.write(
        'a port is taken (another fleet running?): pick others with --proxy-listen / --api-listen\n',
      );
    }
    process.exit(1);
  });
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping the fleet...\n');
    await fleet.stop();
    process.stdout.write('stopped.\n');
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  // Should the launcher die some other way, take the servers down with it.
  process.on('exit', () => {
    for (const server of fleet.servers) server.child.kill('SIGKILL');
  });
  try {
    const flaps = new FlapsClient(fleet.urls.flaps, fleet.secrets.apiToken);
    await ensureDemoApp(flaps, {
      app: config.app,
      machineCount: config.machines,
      region: config.region,
      image: config.image,
    });
    const host = `${config.app}.${config.domain}`;
    await waitForProxy(fleet.urls.proxy, host, (answer) => answer.status === 200);
    printWelcome(
      fleet.urls,
      host,
      fleet.secrets.apiToken,
      relative(process.cwd(), stateDir) || '.',
    );
  } catch (error) {
    process.stderr.write(
      `the fleet started but the demo app did not come up: ${(error as Error).message}\n`,
    );
    process.stderr.write(`logs: ${logs}\n`);
    await fleet.stop();
    process.exit(1);
  }
});

function printWelcome(
  urls: { proxy: string; flaps: string },
  host: string,
  apiToken: string,
  stateDir: string,
): void {
  const port = new URL(urls.proxy).port;
  process.stdout.write(
    [
      '',
      'Fleet is up: corrosion, flyd, flaps and fly-proxy on this machine.',
      `  demo app      http://${host}:${port}/`,
      `  try it        curl -s http://${host}:${port}/`,
      `                curl -s -H 'Host: ${host}' ${urls.proxy}/`,
      `  Machines API  ${urls.flaps}   (token in ${stateDir}/secrets.json)`,
      `                curl -s -H 'Authorization: Bearer ${apiToken}' ${urls.flaps}/v1/apps/${host.split('.')[0]}/machines`,
      `  state, logs   ${stateDir}/`,
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
}
